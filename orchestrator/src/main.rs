//! `ringback-orchestrator`: the reference orchestrator as a service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use ringback_orchestrator::config::{Args, Config};
use ringback_orchestrator::http::ReqwestClient;
use ringback_orchestrator::server::{Orchestrator, serve};

/// How long a stopping service waits for actions under way (a caller being moved, a specialist dialed).
const DRAIN: Duration = Duration::from_secs(20);

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::Error::new(e).context("starting the runtime")),
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Bad configuration or a service that cannot start: the reason, and exit code 2.
#[allow(clippy::print_stderr)] // the one place the binary talks to its terminal rather than its logs
fn fail(error: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("ringback-orchestrator: {error:#}");
    std::process::ExitCode::from(2)
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Config::resolve(Args::parse(), |name| std::env::var(name).ok())?;
    let store = config.store.open().with_context(|| format!("opening the state store `{}`", config.store))?;
    let http =
        ReqwestClient::new(Duration::from_secs(config.api_timeout_s)).context("building the HTTP client")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_url,
        twilio = %config.twilio_api_url,
        vapi = %config.vapi_api_url,
        store = %config.store,
        specialists = config.specialists.numbers().count(),
        "ringback-orchestrator ready"
    );
    let orchestrator = Orchestrator::new(config, Arc::new(http), store);
    let resumed = orchestrator.recover().await.context("reading the state store")?;
    if resumed > 0 {
        tracing::info!(calls = resumed, "resumed calls that were in progress");
    }
    serve(listener, orchestrator, shutdown(), DRAIN).await.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing actions under way");
}
