//! `ringback serve`: the fake Twilio and the fake Vapi on loopback addresses in real time, with a world
//! file, printing the timeline as it happens.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ringback_sim::ids::AccountSid;
use ringback_sim::journal::{Event, TimelineLine};
use ringback_sim::runtime::{Clock, Sim};
use ringback_sim::transport::HttpTransport;
use ringback_sim::world::{AccountConfig, World, WorldConfig};

/// The account `ringback serve` accepts when `RINGBACK_TWILIO_ACCOUNT_SID` is not set.
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// The auth token `ringback serve` accepts when `RINGBACK_TWILIO_AUTH_TOKEN` is not set.
pub const DEFAULT_AUTH_TOKEN: &str = "ringback-auth-token";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the fake Twilio listens (point the SDK's base URL here).
    #[arg(long, default_value = "127.0.0.1:8080")]
    twilio_addr: SocketAddr,
    /// Where the fake Vapi listens (point the Vapi SDK's base URL here).
    #[arg(long, default_value = "127.0.0.1:8081")]
    vapi_addr: SocketAddr,
    /// The private API key the fake Vapi accepts as `Authorization: Bearer …`.
    #[arg(long, env = "RINGBACK_VAPI_API_KEY", default_value = ringback_sim::vapi::DEFAULT_API_KEY, hide_env_values = true)]
    vapi_api_key: String,
    /// A world file (TOML): accounts, their numbers and voice URLs, phones and their behaviours.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Listen on a non-loopback address; by default ringback refuses to, as the fakes accept anyone.
    #[arg(long)]
    allow_remote: bool,
    /// The account SID the fake accepts (HTTP Basic user).
    #[arg(long, env = "RINGBACK_TWILIO_ACCOUNT_SID", default_value = DEFAULT_ACCOUNT_SID, hide_env_values = true)]
    account_sid: String,
    /// The auth token the fake accepts and signs webhooks with.
    #[arg(long, env = "RINGBACK_TWILIO_AUTH_TOKEN", default_value = DEFAULT_AUTH_TOKEN, hide_env_values = true)]
    auth_token: String,
    /// Seconds of real time per simulated second (0.1 makes a 30 s ring take 3 s).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
}

pub fn run(args: ServeArgs) -> Result<()> {
    for (flag, addr) in [("--twilio-addr", args.twilio_addr), ("--vapi-addr", args.vapi_addr)] {
        if !addr.ip().is_loopback() && !args.allow_remote {
            bail!("{flag} {addr} is not a loopback address; pass --allow-remote to listen there");
        }
    }
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        bail!("--time-scale {}: expected a positive number", args.time_scale);
    }
    let mut config = match &args.world {
        Some(path) => read_world(path)?,
        None => WorldConfig::default(),
    };
    let account: AccountSid =
        args.account_sid.parse().with_context(|| "RINGBACK_TWILIO_ACCOUNT_SID / --account-sid".to_owned())?;
    if !config.accounts.iter().any(|a| a.sid == account) {
        config.accounts.push(AccountConfig {
            sid: account,
            auth_token: args.auth_token.clone(),
            numbers: Vec::new(),
        });
    }
    config.epoch = Some(ringback::conform::wall_clock_epoch());
    if !config.vapi.api_keys.contains(&args.vapi_api_key) {
        config.vapi.api_keys.push(args.vapi_api_key.clone());
    }

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        // The fake Vapi hands out URLs to itself (stream, control, `/twilio/*`): bind it first.
        let vapi_listener = tokio::net::TcpListener::bind(args.vapi_addr)
            .await
            .with_context(|| format!("binding the fake Vapi to {}", args.vapi_addr))?;
        let vapi_bound = vapi_listener.local_addr()?;
        config.vapi.public_url = format!("http://{vapi_bound}");
        let world =
            World::new(config).map_err(anyhow::Error::msg).context("the world file is inconsistent")?;
        let transport = HttpTransport::new(args.time_scale).map_err(anyhow::Error::msg)?;
        let sim = Sim::new(world, Clock::start(args.time_scale), Arc::new(transport));
        let listener = tokio::net::TcpListener::bind(args.twilio_addr)
            .await
            .with_context(|| format!("binding the fake Twilio to {}", args.twilio_addr))?;
        let bound = listener.local_addr()?;
        say!("ringback: fake Twilio on http://{bound}");
        say!("  account SID  {}", args.account_sid);
        say!(
            "  auth token   {}",
            if args.auth_token == DEFAULT_AUTH_TOKEN {
                DEFAULT_AUTH_TOKEN
            } else {
                "(from RINGBACK_TWILIO_AUTH_TOKEN)"
            }
        );
        say!("  SDK base URL http://{bound} (Node: client.api.baseUrl, Python: client.api.base_url)");
        say!("ringback: fake Vapi on http://{vapi_bound}");
        say!(
            "  API key      {}",
            if args.vapi_api_key == ringback_sim::vapi::DEFAULT_API_KEY {
                ringback_sim::vapi::DEFAULT_API_KEY
            } else {
                "(from RINGBACK_VAPI_API_KEY)"
            }
        );
        say!("  SDK base URL http://{vapi_bound} (Node: new VapiClient({{ baseUrl }}), Python: Vapi(base_url=…))");
        say!("  control API  http://{bound}/_ringback/ (POST calls {{from, to}}, calls/SID/hangup, calls/SID/digits; PUT phones/NUMBER; GET timeline)");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
        let printer = tokio::spawn(print_timeline(sim.clone()));
        let router = ringback_sim::twilio::rest::router(sim.clone()).merge(ringback_sim::control::router(sim.clone()));
        let vapi = axum::serve(vapi_listener, ringback_sim::vapi::rest::router(sim.clone()));
        let twilio = axum::serve(listener, router);
        tokio::select! {
            served = twilio => served.context("serving the fake Twilio")?,
            served = vapi => served.context("serving the fake Vapi")?,
            () = shutdown => {}
        }
        driver.abort();
        printer.abort();
        Ok(())
    })
}

/// Prints journal entries as they are recorded.
/// Reads a world file, at most [`ringback_scenarios::MAX_FILE_BYTES`] of TOML.
fn read_world(path: &std::path::Path) -> Result<WorldConfig> {
    let text = ringback_scenarios::read_file(path)
        .with_context(|| format!("reading world file {}", path.display()))?;
    toml::from_str::<WorldConfig>(&text).with_context(|| format!("world file {}", path.display()))
}

async fn print_timeline(sim: ringback_sim::runtime::SharedSim) {
    let mut printed = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        // Copy the new entries under the world's lock and format them after releasing it: the fakes
        // wait for that lock, and formatting thousands of lines under load stalled them.
        let ready: Vec<ringback_sim::journal::Entry> = {
            let world = sim.world();
            let entries = world.journal().entries();
            let new = entries.get(printed..).unwrap_or_default();
            // Stop at an exchange still in flight, so each line prints once, complete and in order.
            let ready = new
                .iter()
                .take_while(
                    |e| !matches!(&e.event, Event::Http(x) if x.response.is_none() && x.error.is_none()),
                )
                .count();
            printed += ready;
            new[..ready].to_vec()
        };
        if ready.is_empty() {
            continue;
        }
        let mut text = String::new();
        for entry in &ready {
            let _ = writeln!(text, "{}", TimelineLine(entry));
        }
        say!("{}", text.trim_end_matches('\n'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_file_is_read_up_to_a_bound_and_its_errors_name_it() {
        let err = format!("{:#}", read_world(std::path::Path::new("/dev/zero")).expect_err("endless"));
        assert!(err.contains("/dev/zero") && err.contains("larger than"), "{err}");
        let dir = std::env::temp_dir().join(format!("ringback-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let file = dir.join("world.toml");
        std::fs::write(&file, "seed = 7\n[[accounts]]\nsid = 12\n").expect("written");
        let err = format!("{:#}", read_world(&file).expect_err("a number for a SID"));
        assert!(err.contains("world.toml") && err.contains("line 3"), "{err}");
        std::fs::write(&file, "seed = 7\n").expect("written");
        assert_eq!(read_world(&file).expect("valid").seed, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
