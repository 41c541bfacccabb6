//! `ringback-orchestrator`: the reference orchestrator as a service.

fn main() {}
