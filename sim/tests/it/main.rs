//! The simulator's integration tests: one binary, one module per area.

mod callbacks;
mod conferences;
mod flows;
mod spec;
mod support;
