//! The integration tests of `ringback-sim`: one binary, one module per concern.

mod spec;
