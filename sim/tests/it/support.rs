//! Test support: a world with one account and number, run in virtual time against an in-memory target.

use std::sync::{Arc, Mutex};

use axum::Router;
use ringback_sim::ids::AccountSid;
use ringback_sim::runtime::{Clock, SharedSim, Sim};
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::transport::InMemoryTransport;
use ringback_sim::world::{AccountConfig, NumberConfig, World, WorldConfig};

pub const ACCOUNT: AccountSid = AccountSid::from_u128(0x1);
pub const TOKEN: &str = "test-auth-token";
pub const NUMBER: &str = "+15550000100";
pub const CALLER: &str = "+15557770001";

/// A world whose account owns `NUMBER`, with its voice URL at `http://orchestrator.test/voice`.
pub fn world(phones: &[(&str, &str)]) -> World {
    let mut config = WorldConfig {
        seed: 7,
        accounts: vec![AccountConfig {
            sid: ACCOUNT,
            auth_token: TOKEN.into(),
            numbers: vec![NumberConfig {
                phone_number: NUMBER.into(),
                voice_url: Some("http://orchestrator.test/voice".into()),
                voice_method: None,
                voice_fallback_url: None,
                status_callback: Some("http://orchestrator.test/number-status".into()),
            }],
        }],
        ..WorldConfig::default()
    };
    for (number, table) in phones {
        config.phones.insert((*number).into(), behaviour(table));
    }
    World::new(config).expect("valid world")
}

/// A phone behaviour from its TOML inline table, e.g. `{ answer = "busy" }`.
pub fn behaviour(toml_table: &str) -> ringback_sim::phone::Behaviour {
    let b = toml::from_str::<toml::Table>(&format!("b = {toml_table}")).expect("behaviour toml");
    b["b"].clone().try_into().expect("behaviour")
}

/// Starts a virtual-time sim whose webhooks go to `target` at `orchestrator.test`.
pub fn sim(world: World, target: Router) -> SharedSim {
    let transport = InMemoryTransport::new().route("orchestrator.test", target);
    Sim::new(world, Clock::start(1.0), Arc::new(transport))
}

/// Runs until nothing more happens (at most 10 simulated minutes).
pub async fn settle(sim: &SharedSim) {
    let deadline = SimInstant::ZERO + SimDuration::from_secs(600);
    assert!(
        ringback_sim::runtime::run_until_quiet(sim, deadline).await,
        "the world did not settle:\n{}",
        sim.world().journal().timeline()
    );
}

/// A form body as `(name, value)` pairs.
pub type Pairs = Vec<(String, String)>;

/// Form bodies a target received, by path.
#[derive(Clone, Debug, Default)]
pub struct Received(pub Arc<Mutex<Vec<(String, Pairs)>>>);

/// A POST route that records the form body it gets under `path` and answers `reply` as TwiML.
pub fn record(path: &'static str, reply: &'static str) -> axum::routing::MethodRouter<Received> {
    axum::routing::post(
        move |axum::extract::State(r): axum::extract::State<Received>, body: String| async move {
            r.push(path, &body);
            ([("content-type", "text/xml")], reply)
        },
    )
}

impl Received {
    pub fn push(&self, path: &str, body: &str) {
        let pairs = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        self.0.lock().expect("lock").push((path.to_owned(), pairs));
    }

    pub fn at(&self, path: &str) -> Vec<Vec<(String, String)>> {
        self.0.lock().expect("lock").iter().filter(|(p, _)| p == path).map(|(_, b)| b.clone()).collect()
    }
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The timeline with every SID replaced by its kind and order of first appearance (`CA#1`, `CF#1`), so
/// snapshots survive changes in how many SIDs a run draws.
pub fn normalized_timeline(sim: &SharedSim) -> String {
    let text = sim.world().journal().timeline();
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let candidate = text.get(i..i + 34).filter(|s| {
            let b = s.as_bytes();
            b[0].is_ascii_uppercase()
                && b[1].is_ascii_uppercase()
                && b[2..].iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        });
        match candidate {
            Some(sid) if ["CA", "CF", "PN", "MZ", "AC"].contains(&&sid[..2]) => {
                let n = match seen.iter().filter(|s| s[..2] == sid[..2]).position(|s| s == sid) {
                    Some(n) => n + 1,
                    None => {
                        seen.push(sid.to_owned());
                        seen.iter().filter(|s| s[..2] == sid[..2]).count()
                    }
                };
                out.push_str(&format!("{}#{n}", &sid[..2]));
                i += 34;
            }
            _ => {
                let c = text[i..].chars().next().expect("char boundary");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// Serves `world`'s fake Twilio on a loopback port in real time scaled by `scale` (real seconds per
/// simulated second), with its driver running; returns the base URL and the sim.
pub async fn serve_over_http(world: World, scale: f64) -> (String, SharedSim) {
    let transport = ringback_sim::transport::HttpTransport::new(scale).expect("client");
    let sim = Sim::new(world, Clock::start(scale), Arc::new(transport));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = ringback_sim::twilio::rest::router(sim.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    (base, sim)
}

/// Both fakes of one world over HTTP, as [`serve_both_over_http`] starts them.
#[derive(Debug)]
pub struct Served {
    /// The fake Twilio's base URL, `http://127.0.0.1:<port>`.
    pub twilio_url: String,
    /// The fake Vapi's base URL, which is also the world's `vapi.public_url`.
    pub vapi_url: String,
    pub sim: SharedSim,
}

/// Serves the world `config` describes over HTTP, the fake Twilio and the fake Vapi on two loopback ports,
/// in real time scaled by `scale`, with its driver running. The Vapi port is bound before the world is
/// built, so that `vapi.public_url` (the base of the stream, control and `/twilio/*` URLs the fake Vapi
/// hands out) is that port's base URL.
pub async fn serve_both_over_http(mut config: WorldConfig, scale: f64) -> Served {
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (twilio, vapi) = (bind().await.expect("bind twilio"), bind().await.expect("bind vapi"));
    let base = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().expect("addr"));
    let (twilio_url, vapi_url) = (base(&twilio), base(&vapi));
    config.vapi.public_url = vapi_url.clone();
    let world = World::new(config).expect("valid world");
    let transport = ringback_sim::transport::HttpTransport::new(scale).expect("client");
    let sim = Sim::new(world, Clock::start(scale), Arc::new(transport));
    let twilio_router = ringback_sim::twilio::rest::router(sim.clone());
    let vapi_router = ringback_sim::vapi::rest::router(sim.clone());
    tokio::spawn(async move { axum::serve(twilio, twilio_router).await });
    tokio::spawn(async move { axum::serve(vapi, vapi_router).await });
    tokio::spawn(ringback_sim::runtime::drive(sim.clone(), std::future::pending()));
    Served { twilio_url, vapi_url, sim }
}
