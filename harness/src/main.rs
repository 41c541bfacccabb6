//! `ringback`: the command line: `run` (scenarios against a target, judged), `fuzz`, `rules`, and `serve` (the fakes
//! on localhost for development).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool talks to its terminal

/// Prints a line on standard output. Output to a pipe that closed early (`ringback run | head`) is
/// dropped rather than turned into a panic: the run goes on and its exit code still tells.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod call_cmd;
mod run_cmd;
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
    /// Run scenario files or folders (default: the built-in library) against a target and judge every
    /// conformance rule. Exit code 0: every MUST rule held; 1: a rule broke; 2: bad input.
    Run(run_cmd::RunArgs),
    /// Judge an orchestrator over HTTP: start it with a target file's command, pointed at the fakes on
    /// loopback ports, and run the scenarios that apply to it at once, in real (optionally scaled) time.
    /// The same outputs and exit codes as `run`.
    Conform(run_cmd::ConformArgs),
    /// Explore generated scenarios (outcomes, timings, hang-ups, faults, 1 to 50 callers) against a target;
    /// the first failure is shrunk to a minimal scenario file that `ringback run` replays.
    Fuzz(run_cmd::FuzzArgs),
    /// List the conformance rules with their levels, deadlines and how each is judged.
    Rules,
    /// Run the fake Twilio and the fake Vapi on localhost, in real time, for local development and SDK
    /// tests.
    Serve(serve::ServeArgs),
    /// Drive a running `ringback serve` by hand: place a call, speak or press keys as the caller, hang
    /// up, set how a phone answers, list calls, follow the timeline.
    Call(call_cmd::CallArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RINGBACK_LOG")
                .unwrap_or_else(|_| "warn,ringback_orchestrator=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(args) => run_cmd::run(args),
        Command::Conform(args) => run_cmd::conform(args),
        Command::Fuzz(args) => run_cmd::fuzz(args),
        Command::Rules => {
            run_cmd::rules();
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Call(args) => call_cmd::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringback: {e:#}");
            // Exit code 2: bad input or configuration (SPEC §6).
            ExitCode::from(2)
        }
    }
}
