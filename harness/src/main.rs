//! `ringback`: the command line. Today: `ringback serve`, the fakes on localhost for development.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool talks to its terminal

mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Test voice-AI call transfers without a phone line.
#[derive(Debug, Parser)]
#[command(name = "ringback", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the fake Twilio on localhost, in real time, for local development and SDK tests.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RINGBACK_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringback: {e:#}");
            // Exit code 2: bad input or configuration (SPEC §6).
            ExitCode::from(2)
        }
    }
}
