//! The reference orchestrator: a deployable service that wires a Twilio number to a Vapi assistant and
//! transfers callers to human specialists, returning them to the assistant whenever a transfer fails.
//!
//! **Architecture Invariant:** this crate knows nothing about the simulator; it talks to Twilio and Vapi
//! only through their public HTTP APIs.

pub mod http;
pub mod machine;
pub mod store;
pub mod twilio;
pub mod vapi;
