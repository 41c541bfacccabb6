//! The harness's integration tests: one binary, one module per subject.

mod broken;
mod call;
mod conform;
mod library;
mod native;
mod properties;
mod reference;
mod rules;
mod secrets;
mod target_files;
