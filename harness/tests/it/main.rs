//! The harness's integration tests: one binary, one module per subject.

mod broken;
mod reference;
mod rules;
