//! The scenario format's integration tests: one binary, one module per subject.

mod parsers;
