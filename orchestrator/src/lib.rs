//! The reference orchestrator: a deployable service that wires a Twilio number to a Vapi assistant and
//! transfers callers to human specialists, returning them to the assistant whenever a transfer fails.
//!
//! **Architecture Invariant:** this crate knows nothing about the simulator; it talks to Twilio and Vapi
//! only through their public HTTP APIs.
//!
//! Start at [`machine`]: one caller's state and every decision, pure. [`server`] is the shell that
//! turns webhooks into events and actions into API calls; [`twilio`] and [`vapi`] are the API clients
//! and webhook authentication, over the [`http`] seam (reqwest in production, anything in tests);
//! [`store`] keeps state durable; [`config`] reads flags and environment; [`twiml`] writes the answers.

pub mod config;
pub mod http;
pub mod machine;
pub mod server;
pub mod store;
pub mod twilio;
pub mod twiml;
pub mod vapi;
