//! `ringback`: the command line.

fn main() {}
