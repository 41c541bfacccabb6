//! The fake Twilio: REST API 2010-04-01, the TwiML interpreter, call legs, conferences, answering machine
//! detection and signed webhooks.
//!
//! Code map:
//! - `model`: the vocabulary shared by every part (call status, directions, methods, AMD values).
//! - `twiml`: TwiML parsing into typed verbs, with Twilio's error codes.
//! - `wire`: the JSON resources and error bodies exactly as the spec file writes them; form parsing.
//! - `signature`: `X-Twilio-Signature`.
//! - `leg`: the pure call-status state machine.
//! - `engine`: the world's Twilio side: legs executing TwiML, dials, conferences, callbacks (start here).
//! - `rest`: the axum router for the REST API.
//! - `stream_client`: the media-stream WebSocket client for `<Connect><Stream>` to external servers.

pub mod model;
pub mod signature;
pub mod stream_client;
pub mod twiml;
pub mod wire;
