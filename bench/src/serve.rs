//! The servers the load driver measures, each in its own process on loopback: the fake Twilio as
//! `ringback serve` runs it, a wiremock server answering with a static body, and Prism's stateless mock
//! of the same OpenAPI file.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The account `ringback serve` accepts by default.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "ringback-auth-token";
/// The Twilio number calls are placed from.
pub const FROM: &str = "+15550000100";
/// A phone that is always busy: a created call ends at once and sends no webhook.
pub const BUSY: &str = "+15550001000";

/// A child process, killed (by its id) when dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until something accepts connections on `addr`, or the child exits, or `timeout` passes.
fn wait_ready(child: &mut Child, addr: SocketAddr, what: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before it listened on {addr} ({status})");
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on {addr} within {timeout:?}")
}

/// The world file the fake Twilio runs with: the default account owning [`FROM`], and [`BUSY`].
pub fn world_file(dir: &Path, extra_phones: &str) -> Result<std::path::PathBuf> {
    let path = dir.join("bench-world.toml");
    // An account sized for a load test, as its owner would have Twilio raise it: calls are dialed as fast
    // as they are created (the default of 1 call per second would queue them for hours) and a thousand
    // requests may be in flight (the 500-call webhook run redirects up to 500 at once).
    let text = format!(
        "seed = 1\n\n[twilio]\ncalls_per_second = 1000000.0\nmax_concurrent_requests = 1000\n\n\
         [[accounts]]\nsid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\n\
         numbers = [{{ phone_number = \"{FROM}\" }}]\n\n[phones]\n\"{BUSY}\" = {{ answer = \"busy\" }}\n{extra_phones}"
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `ringback serve` with `world` on a free port, its timeline printed to nowhere.
pub fn fake_twilio(ringback: &Path, world: &Path) -> Result<Server> {
    let addr = free_addr()?;
    let mut child = Command::new(ringback)
        .args(["serve", "--twilio-addr", &addr.to_string(), "--vapi-addr", "127.0.0.1:0", "--world"])
        .arg(world)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} serve", ringback.display()))?;
    wait_ready(&mut child, addr, "ringback serve", Duration::from_secs(20))?;
    Ok(Server { addr, child })
}

/// This binary's `wiremock` subcommand on a free port, answering `POST path` with `status` and `body`.
pub fn wiremock(path: &str, status: u16, body: &[u8], dir: &Path) -> Result<Server> {
    let addr = free_addr()?;
    let body_file = dir.join("wiremock-body.json");
    std::fs::write(&body_file, body)?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["wiremock", "--addr", &addr.to_string(), "--path", path, "--status", &status.to_string()])
        .arg("--body-file")
        .arg(&body_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting the wiremock server")?;
    wait_ready(&mut child, addr, "wiremock", Duration::from_secs(20))?;
    Ok(Server { addr, child })
}

/// Serves the wiremock baseline until killed (the `wiremock` subcommand).
pub fn run_wiremock(addr: SocketAddr, path: &str, status: u16, body: Vec<u8>) -> Result<()> {
    use wiremock::matchers::{method, path as path_is};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(addr)?;
        let server = MockServer::builder().listener(listener).start().await;
        Mock::given(method("POST"))
            .and(path_is(path))
            .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
            .mount(&server)
            .await;
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Prism (`prism mock`) serving `spec` statelessly on a free port.
pub fn prism(prism: &Path, spec: &Path) -> Result<Server> {
    let addr = free_addr()?;
    let mut child = Command::new(prism)
        .args(["mock", "--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .arg(spec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", prism.display()))?;
    wait_ready(&mut child, addr, "prism", Duration::from_secs(120))?;
    Ok(Server { addr, child })
}
