//! The reference orchestrator: a deployable service that wires a Twilio number to a Vapi assistant and
//! transfers callers to human specialists, returning them to the assistant whenever a transfer fails.
//!
//! **Architecture Invariant:** this crate knows nothing about the simulator; it talks to Twilio and Vapi
//! only through their public HTTP APIs. It is built in issue #4; until then the crate holds only this map.
