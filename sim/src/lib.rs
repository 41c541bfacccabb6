//! The simulated world of ringback: virtual time, scripted phones, a faithful fake Twilio, and the
//! journal of everything that went over the wire.
//!
//! Code map (start with `world`):
//! - [`time`], [`rng`], [`ids`], [`sched`]: virtual time, seeded randomness, SIDs, the event queue.
//! - [`journal`]: the record the harness judges.
//! - [`transport`]: how webhooks reach a target: in memory or over HTTP; [`faults`]: what a run does
//!   to them and their answers (duplicate, delay, drop, forge; slow answer, 500, unparsable TwiML).
//! - [`watch`]: the moments a scripted caller can hang up on (on hold, while the specialist rings, …).
//! - [`twilio`]: the fake Twilio; [`vapi`]: the fake Vapi.
//!
//! **Architecture Invariant:** nothing in this crate reads the wall clock or OS entropy. Time comes from
//! the run's clock and randomness from the run's seed, so the same seed gives the same journal.
//!
//! **Architecture Invariant:** this crate knows nothing about scenarios, the harness or the reference
//! orchestrator; they depend on it, never the other way round.

pub mod control;
pub mod faults;
mod http_journal;
pub mod ids;
pub mod journal;
pub mod phone;
pub mod rng;
pub mod runtime;
pub mod sched;
pub mod time;
pub mod transport;
pub mod twilio;
pub mod vapi;
pub mod watch;
pub mod world;
