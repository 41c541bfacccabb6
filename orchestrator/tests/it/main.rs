//! The reference orchestrator's integration tests: one binary, one module per subject.

mod parsers;
