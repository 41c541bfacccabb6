//! The simulator's integration tests: one binary, one module per area.

mod answer_faults;
mod callbacks;
mod conferences;
mod control;
mod flows;
mod limits;
mod openapi;
mod parsers;
mod rest_spec;
mod sdk_signature;
mod sdk_support;
mod sdk_twilio;
mod sdk_vapi;
mod spec;
mod support;
mod vapi_flows;
mod vapi_rest;
mod vapi_spec;
