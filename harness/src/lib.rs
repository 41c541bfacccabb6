//! ringback's harness: runs call-transfer scenarios against a target orchestrator and judges what went
//! over the wire. Start at [`mod@reference`], the in-process reference orchestrator target.

pub mod reference;
pub mod rules;
