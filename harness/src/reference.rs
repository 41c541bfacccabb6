//! The reference orchestrator as an in-process target: the world's webhooks call its router directly
//! and its Twilio and Vapi requests go straight to the fakes' routers, with no socket, so a scenario
//! runs in virtual time.

use std::sync::{Arc, Mutex};

use axum::Router;
use ringback_orchestrator::config::Config;
use ringback_orchestrator::http::{ApiRequest, ApiResponse, HttpClient, HttpError, HttpFuture};
use ringback_orchestrator::server::Orchestrator;
use ringback_orchestrator::store::MemoryStore;
use ringback_sim::runtime::{Clock, SharedSim, Sim};
use ringback_sim::time::SimInstant;
use ringback_sim::transport::{InMemoryTransport, OutboundRequest, SendFuture, Transport, TransportError};
use ringback_sim::world::World;

use crate::front::Front;

/// Where the in-process orchestrator lives, as the world sees it.
pub const ORCHESTRATOR_HOST: &str = "orchestrator.test";
/// Its public base URL.
pub const ORCHESTRATOR_URL: &str = "http://orchestrator.test";
/// The hosts of Twilio's and Vapi's APIs, which the fakes answer in process.
const TWILIO_HOST: &str = "api.twilio.com";
const VAPI_HOST: &str = "api.vapi.ai";

/// The orchestrator's HTTP client: requests to Twilio's and Vapi's API hosts reach the fakes' routers.
#[derive(Clone, Debug)]
pub struct FakeApis {
    routes: InMemoryTransport,
}

impl FakeApis {
    /// The fakes of one world.
    pub fn new(sim: &SharedSim) -> FakeApis {
        FakeApis::of(
            ringback_sim::twilio::rest::router(sim.clone()),
            ringback_sim::vapi::rest::router(sim.clone()),
        )
    }

    /// The fakes of every world behind `front`, each request handed to the world it names.
    pub fn behind(front: &Arc<Front>) -> FakeApis {
        FakeApis::of(front.twilio(), front.vapi())
    }

    fn of(twilio: Router, vapi: Router) -> FakeApis {
        FakeApis { routes: InMemoryTransport::new().route(TWILIO_HOST, twilio).route(VAPI_HOST, vapi) }
    }
}

impl HttpClient for FakeApis {
    fn send(&self, request: ApiRequest) -> HttpFuture {
        let sent = self.routes.send(OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        });
        Box::pin(async move {
            match sent.await {
                Ok(response) => Ok(ApiResponse { status: response.status, body: response.body }),
                Err(TransportError::Refused(host)) => {
                    Err(HttpError::Connect { url: host, reason: "nothing answers there".into() })
                }
                Err(e) => Err(HttpError::Other(e.to_string())),
            }
        })
    }
}

/// The target's router, which a test can take down and put back (a restart).
#[derive(Clone, Debug, Default)]
pub struct Slot(Arc<Mutex<Option<Router>>>);

impl Slot {
    pub fn set(&self, router: Option<Router>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = router;
    }
}

/// Delivers the world's webhooks for [`ORCHESTRATOR_HOST`] to whatever router the slot holds; while it
/// holds none, the connection is refused, as for a stopped server. (Faults are the world's business:
/// `WorldConfig::faults`, journaled.)
#[derive(Clone, Debug)]
pub struct SlotTransport {
    slot: Slot,
}

impl Transport for SlotTransport {
    fn send(&self, request: OutboundRequest) -> SendFuture {
        let router = self.slot.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match router {
            Some(router) => InMemoryTransport::new().route(ORCHESTRATOR_HOST, router).send(request),
            None => Box::pin(std::future::ready(Err(TransportError::Refused(ORCHESTRATOR_HOST.to_owned())))),
        }
    }
}

/// The reference orchestrator in process: the one serving (a new one after each restart), the state it
/// keeps across restarts, and how the world's webhooks and its own API requests reach it and the fakes.
#[derive(Debug)]
pub struct InProcess {
    orchestrator: Mutex<Orchestrator>,
    config: Config,
    store: MemoryStore,
    slot: Slot,
    apis: FakeApis,
}

impl InProcess {
    /// Starts an orchestrator configured by `config`, serving what is sent through `slot` (see
    /// [`InProcess::transport`]) and reaching Twilio and Vapi through `apis`.
    pub fn start(config: Config, apis: FakeApis, slot: Slot) -> InProcess {
        let store = MemoryStore::new();
        let orchestrator = Orchestrator::new(config.clone(), Arc::new(apis.clone()), Arc::new(store.clone()));
        slot.set(Some(orchestrator.router()));
        InProcess { orchestrator: Mutex::new(orchestrator), config, store, slot, apis }
    }

    /// A transport for another world whose webhooks go to this orchestrator at [`ORCHESTRATOR_URL`].
    pub fn transport(&self) -> SlotTransport {
        SlotTransport { slot: self.slot.clone() }
    }

    /// The orchestrator now serving.
    pub fn orchestrator(&self) -> Orchestrator {
        self.orchestrator.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The state it keeps (what a restart starts from).
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Stops the orchestrator as if its process died: its webhooks are refused and its timers and pending
    /// actions do nothing, until [`InProcess::restart`] starts a new one over the same state.
    pub fn stop(&self) {
        self.slot.set(None);
        self.orchestrator().halt();
    }

    /// Starts a new orchestrator over the same state, as a restarted process would, and lets it take up
    /// what was in flight.
    pub async fn restart(&self) {
        let store = Arc::new(self.store.clone());
        let orchestrator = Orchestrator::new(self.config.clone(), Arc::new(self.apis.clone()), store);
        *self.orchestrator.lock().unwrap_or_else(|p| p.into_inner()) = orchestrator.clone();
        self.slot.set(Some(orchestrator.router()));
        if let Err(e) = orchestrator.recover().await {
            tracing::error!(error = %e, "the restarted orchestrator could not read its state");
        }
    }
}

/// A world wired to the reference orchestrator, in process.
#[derive(Debug)]
pub struct Reference {
    pub sim: SharedSim,
    pub target: Arc<InProcess>,
}

impl Reference {
    /// Starts `world` (on the current tokio runtime's clock: pause it for virtual time) with the
    /// reference orchestrator configured by `config` as its target at [`ORCHESTRATOR_URL`].
    pub fn start(world: World, config: Config) -> Reference {
        let slot = Slot::default();
        let sim = Sim::new(world, Clock::start(1.0), Arc::new(SlotTransport { slot: slot.clone() }));
        let target = Arc::new(InProcess::start(config, FakeApis::new(&sim), slot));
        Reference { sim, target }
    }

    /// The orchestrator now serving (a new one after each restart).
    pub fn orchestrator(&self) -> Orchestrator {
        self.target.orchestrator()
    }

    /// See [`InProcess::stop`].
    pub fn stop(&self) {
        self.target.stop();
    }

    /// Runs the world and the orchestrator (whichever is serving) until neither has anything left to do,
    /// not before `not_before` and not past `deadline`; whether it settled (see [`crate::run::settle`]).
    pub async fn settle(&self, not_before: SimInstant, deadline: SimInstant) -> bool {
        crate::run::settle(&self.sim, not_before, deadline, || {
            let orchestrator = self.orchestrator();
            async move { orchestrator.idle().await }
        })
        .await
    }

    /// See [`InProcess::restart`].
    pub async fn restart(&self) {
        self.target.restart().await;
    }
}
