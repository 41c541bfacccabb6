//! The fake Twilio: REST API 2010-04-01, the TwiML interpreter, call legs, conferences, answering machine
//! detection and signed webhooks.
//!
//! Code map (start with `engine`):
//! - `model`: the vocabulary shared by every part (call status, directions, methods, AMD values).
//! - `twiml`: TwiML parsing into typed verbs, with Twilio's error codes.
//! - `wire`, `errors`: the JSON resources and error bodies exactly as the spec file writes them; forms.
//! - `signature`: `X-Twilio-Signature`.
//! - `leg`: the pure call-status state machine; `amd`: what machine detection concludes.
//! - `engine`: legs, events and webhook outcomes; `interp`: TwiML execution and `<Dial>`;
//!   `conferences`: join, leave, start and end rules; `callbacks`: the webhooks Twilio sends.
//! - `calls`, `numbers`, `participants`: the REST operations on the world; `rest`: the axum router.
//! - `stream_client`: the media-stream WebSocket client for `<Connect><Stream>` to external servers.

pub mod amd;
pub mod callbacks;
pub mod calls;
pub mod conferences;
pub mod engine;
pub mod errors;
pub mod interp;
pub mod leg;
pub mod model;
pub mod numbers;
pub mod participants;
pub mod rest;
pub mod signature;
pub mod stream_client;
pub mod twiml;
pub mod wire;
