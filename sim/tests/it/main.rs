//! The one integration-test binary of `ringback-sim` (`cargo test -p ringback-sim --test it`).

mod sdk_signature;
mod support;
