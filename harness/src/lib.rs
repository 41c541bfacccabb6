//! ringback's harness: runs call-transfer scenarios against a target orchestrator and judges what went
//! over the wire.
//!
//! Start at [`run`]: a scenario's plan against a target, in virtual time, and each caller's outcome.
//! [`mod@reference`] wires a world to the in-process reference orchestrator; [`rules`] reads a journal into
//! facts and judges the fourteen conformance rules over them; [`fuzz`] explores generated scenarios and
//! shrinks a failure to a scenario file.

pub mod conform;
pub mod front;
pub mod fuzz;
pub mod normalize;
pub mod reference;
pub mod report;
pub mod rules;
pub mod run;
pub mod soak;
pub mod target;
