//! `ringback conform`: scenarios against an orchestrator reachable over HTTP, described by a target file,
//! in real (optionally scaled) time.
//!
//! ringback starts the orchestrator with the target file's command (the `RINGBACK_*` variables of SPEC §3
//! point it at the fakes), waits for it to be ready, and runs every scenario at once, each in a world of
//! its own behind one pair of fakes ([`crate::front`]) with caller and specialist numbers of its own
//! ([`Plan::relabel`]). Each world is judged alone with the same rules as `ringback run`. A scenario that
//! restarts the orchestrator gets a process of its own, and runs only when the target file allows
//! restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringback_scenarios::Plan;
use ringback_scenarios::plan::{AssistantTransfer, ToolArguments, Wiring};
use ringback_sim::runtime::{Clock, SharedSim, Sim};
use ringback_sim::time::{SimDuration, SimInstant};
use ringback_sim::transport::HttpTransport;
use ringback_sim::world::{World, WorldConfig};
use tokio::sync::Mutex;

use crate::front::{Front, Member};
use crate::run::{RESTART, Run, context, horizon, judge, spawn_caller};
use crate::target::{Command, EXPORTED, TargetFile, Transfer, fill};

/// How long a world whose calls have all ended must hear nothing from the orchestrator before its run
/// ends (real time).
const QUIET: Duration = Duration::from_secs(2);

/// How a conformance run goes.
#[derive(Clone, Debug)]
pub struct Options {
    /// Real seconds per simulated second.
    pub time_scale: f64,
    /// Where the orchestrator's output goes (appended; one file per run).
    pub log: PathBuf,
    /// Becomes `Some` when the run must stop now: scenarios still running end unjudged.
    pub interrupt: tokio::sync::watch::Receiver<Option<Stop>>,
}

/// Why a run stopped before every scenario was over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// The run's own deadline passed.
    Deadline(Duration),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Interrupted => f.write_str("interrupted (Ctrl-C)"),
            Stop::Deadline(d) => write!(f, "the run's deadline of {} s passed", d.as_secs_f64()),
        }
    }
}

/// A scenario that does not apply to the target, and why.
pub fn skip_reason(target: &TargetFile, plan: &Plan) -> Option<String> {
    if plan.native_tool.is_some() {
        return Some("a vapi-native scenario: it runs with `--target vapi-native`".into());
    }
    if target.transfer == Transfer::TransferDestinationRequest {
        return Some(
            "a transfer-destination-request carries no destination: the orchestrator would have to read \
             the department from the conversation, which the scripted assistant does not model; this \
             version drives `tool` and `phone-call-control` targets"
                .into(),
        );
    }
    if target.transfer == Transfer::PhoneCallControl && plan.departments.iter().any(|(_, n)| n.len() > 1) {
        return Some(
            "a phone-call-control forward names one number, and the scenario has departments with \
             fallback numbers"
                .into(),
        );
    }
    if plan.orchestrator != ringback_scenarios::OrchestratorOptions::default() {
        return Some(format!(
            "it sets `[orchestrator]` options (ring timeout {} s, machine detection `{}`), which an \
             external orchestrator takes from its own configuration",
            plan.orchestrator.ring_timeout_s, plan.orchestrator.machine_detection
        ));
    }
    match (&target.command, &plan.restart) {
        (None, _) => Some(
            "ringback runs scenarios only against an orchestrator it starts (`[command]`), so that each \
             has specialist numbers of its own"
                .into(),
        ),
        (Some(command), Some(_)) if !command.restart => Some(
            "it restarts the orchestrator, and the target file does not allow that (`command.restart`)"
                .into(),
        ),
        _ => None,
    }
}

/// What a conformance run found.
#[derive(Debug)]
pub struct Conformance {
    /// One per scenario given, in order.
    pub runs: Vec<Result<Run, String>>,
    /// Requests to the fakes that named nothing of any scenario's world (answered by the lobby world):
    /// `METHOD path` and how many.
    pub unattributed: Vec<(String, usize)>,
}

/// Runs `plans` (every one applies: see [`skip_reason`]) against the target in `file`. An `Err` is a
/// target that could not be used: a command that does not start or never becomes ready.
pub async fn conform(
    target: &TargetFile,
    file: &Path,
    plans: Vec<Plan>,
    options: &Options,
) -> Result<Conformance, String> {
    if plans.is_empty() {
        return Ok(Conformance { runs: Vec::new(), unattributed: Vec::new() });
    }
    let Some(command) = &target.command else {
        return Err("the target file has no `[command]`: ringback runs scenarios only against an orchestrator it starts".into());
    };
    let plans: Vec<Plan> = plans
        .into_iter()
        .enumerate()
        .map(|(i, mut plan)| {
            plan.relabel(u16::try_from(i + 1).unwrap_or(u16::MAX));
            plan
        })
        .collect();
    let twilio_listener = bind().await?;
    let vapi_listener = bind().await?;
    let twilio_url = format!("http://{}", twilio_listener.local_addr().map_err(|e| e.to_string())?);
    let vapi_url = format!("http://{}", vapi_listener.local_addr().map_err(|e| e.to_string())?);
    let c = &target.credentials;
    let specialists: Vec<String> = plans.iter().flat_map(Plan::specialist_entries).collect();
    let mut exported = BTreeMap::new();
    for (name, value) in [
        ("RINGBACK_TWILIO_API_URL", twilio_url.as_str()),
        ("RINGBACK_VAPI_API_URL", vapi_url.as_str()),
        ("RINGBACK_TWILIO_ACCOUNT_SID", c.twilio_account_sid.as_str()),
        ("RINGBACK_TWILIO_AUTH_TOKEN", c.twilio_auth_token.as_str()),
        ("RINGBACK_VAPI_API_KEY", c.vapi_api_key.as_str()),
        ("RINGBACK_VAPI_WEBHOOK_SECRET", c.vapi_webhook_secret.as_str()),
        ("RINGBACK_VAPI_ASSISTANT_ID", c.vapi_assistant_id.as_str()),
        ("RINGBACK_VAPI_PHONE_NUMBER_ID", c.vapi_phone_number_id.as_str()),
        ("RINGBACK_TWILIO_NUMBER", c.twilio_number.as_str()),
        ("RINGBACK_SPECIALIST_NUMBERS", specialists.join(",").as_str()),
    ] {
        exported.insert(name.to_owned(), value.to_owned());
    }
    let launch = Launch { target, command, file, exported, log: options.log.clone() };
    let shared = launch.instance(None).await?;

    let setup = Arc::new(Setup {
        vapi_url: vapi_url.clone(),
        scale: options.time_scale,
        transport: Arc::new(HttpTransport::new(options.time_scale).map_err(|e| e.to_string())?),
        epoch: wall_clock_epoch(),
    });
    let lobby = {
        let mut plan = plans[0].clone();
        plan.callers.clear();
        plan.phones.clear();
        plan.faults.clear();
        setup.world(&plan, &shared.wiring)?
    };
    let front = Front::new(lobby);
    let served = [
        tokio::spawn(axum::serve(twilio_listener, front.twilio()).into_future()),
        tokio::spawn(axum::serve(vapi_listener, front.vapi()).into_future()),
    ];
    shared.process.lock().await.start().await?;

    // Every scenario at once; one that restarts the orchestrator gets a process of its own, so that the
    // restart touches nobody else's calls.
    let mut runs: Vec<Option<Result<Run, String>>> = (0..plans.len()).map(|_| None).collect();
    let mut batch = tokio::task::JoinSet::new();
    let mut own = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let (setup, front, plan) = (setup.clone(), front.clone(), plan.clone());
        if plan.restart.is_none() {
            let (shared, interrupt) = (shared.clone(), options.interrupt.clone());
            batch.spawn(async move { (i, run_one(&setup, &front, &plan, &shared, false, &interrupt).await) });
            continue;
        }
        let instance = launch.instance(Some(i + 1)).await?;
        own.push(instance.clone());
        let interrupt = options.interrupt.clone();
        batch.spawn(async move {
            let started = instance.process.lock().await.start().await;
            let run = match started {
                Ok(()) => run_one(&setup, &front, &plan, &instance, true, &interrupt).await,
                Err(e) => Err(format!("the scenario's own orchestrator: {e}")),
            };
            instance.process.lock().await.stop().await;
            (i, run)
        });
    }
    while let Some(done) = batch.join_next().await {
        match done {
            Ok((i, run)) => runs[i] = Some(run),
            Err(e) => tracing::error!(error = %e, "a scenario's run panicked"),
        }
    }
    for instance in own.iter().chain([&shared]) {
        instance.process.lock().await.stop().await;
    }
    for task in served {
        task.abort();
    }
    let mut unattributed: BTreeMap<String, usize> = BTreeMap::new();
    for entry in front.lobby().world().journal().entries() {
        if let ringback_sim::journal::Event::Http(x) = &entry.event {
            *unattributed.entry(format!("{} {}", x.method, x.url)).or_default() += 1;
        }
    }
    Ok(Conformance {
        runs: runs
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("the scenario's run panicked".into())))
            .collect(),
        unattributed: unattributed.into_iter().collect(),
    })
}

/// What every world of the run shares.
struct Setup {
    vapi_url: String,
    scale: f64,
    transport: Arc<HttpTransport>,
    epoch: i64,
}

impl Setup {
    fn config(&self, plan: &Plan, wiring: &Wiring) -> WorldConfig {
        let mut config = plan.wired_world(wiring);
        config.vapi.public_url.clone_from(&self.vapi_url);
        config.epoch = Some(self.epoch);
        config
    }

    fn world(&self, plan: &Plan, wiring: &Wiring) -> Result<SharedSim, String> {
        let world = World::new(self.config(plan, wiring))?;
        Ok(Sim::new(world, Clock::start(self.scale), self.transport.clone()))
    }
}

/// One scenario in its world behind the front, until its calls are over and the orchestrator has gone
/// quiet, or its duration is up.
async fn run_one(
    setup: &Setup,
    front: &Arc<Front>,
    plan: &Plan,
    instance: &Instance,
    restartable: bool,
    interrupt: &tokio::sync::watch::Receiver<Option<Stop>>,
) -> Result<Run, String> {
    let sim = setup.world(plan, &instance.wiring)?;
    let member = front.join(sim.clone(), plan.numbers());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(ringback_sim::runtime::drive(sim.clone(), async move {
        let _ = stopped.await;
    }));
    let down = Arc::new(AtomicBool::new(false));
    let (over, run_over) = tokio::sync::oneshot::channel::<()>();
    let mut restart_on = None;
    let mut restarter = None;
    if let Some(restart) = plan.restart.clone().filter(|_| restartable) {
        let process = instance.process.clone();
        restart_on = restart.on.map(|on| (on, restart.after_s));
        let mut signals = sim.signals();
        let clock = sim.clock();
        let down = down.clone();
        restarter = Some(tokio::spawn(async move {
            let moment = async {
                match restart.at_s {
                    Some(at_s) => {
                        let at = SimInstant::ZERO + SimDuration::from_secs_f64(at_s);
                        tokio::time::sleep_until(clock.deadline(at)).await;
                    }
                    None => loop {
                        match signals.recv().await {
                            Some(RESTART) => break,
                            Some(_) => {}
                            None => std::future::pending::<()>().await,
                        }
                    },
                }
            };
            // A run that ends before the moment comes has nothing to restart.
            tokio::select! {
                () = moment => {}
                _ = run_over => return Ok(()),
            }
            down.store(true, Ordering::SeqCst);
            let mut process = process.lock().await;
            process.stop().await;
            tokio::time::sleep(clock.real(SimDuration::from_secs_f64(restart.down_s))).await;
            let started = process.start().await;
            down.store(false, Ordering::SeqCst);
            started
        }));
    }
    for (i, caller) in plan.callers.iter().enumerate() {
        let _caller = spawn_caller(
            &sim,
            caller.clone(),
            &instance.wiring.service_number,
            restart_on.filter(|_| i == 0),
        );
    }
    let (not_before, deadline) = horizon(plan);
    let mut interrupt = interrupt.clone();
    let stopped = tokio::select! {
        () = wait_until_over(&sim, &member, &down, not_before, deadline) => None,
        stop = run_stopped(&mut interrupt) => Some(stop),
    };
    tracing::debug!(scenario = %plan.description, at = %sim.clock().now(), "run over");
    let _ = stop.send(());
    let _ = driver.await;
    if let Some(stop) = stopped {
        return Err(format!("{stop} at {}, before it was over: not judged", sim.clock().now()));
    }
    let _ = over.send(());
    if let Some(restarter) = restarter {
        match restarter.await {
            Ok(Err(e)) => return Err(format!("restarting the orchestrator: {e}")),
            Err(e) if e.is_panic() => return Err("restarting the orchestrator panicked".into()),
            _ => {}
        }
    }
    Ok(judge(plan, &sim, &context(plan, &instance.wiring.service_number)))
}

/// Resolves when the run must stop, with why; never if nothing can stop it.
async fn run_stopped(interrupt: &mut tokio::sync::watch::Receiver<Option<Stop>>) -> Stop {
    let stop = interrupt.wait_for(Option::is_some).await.map(|stop| stop.unwrap_or(Stop::Interrupted));
    match stop {
        Ok(stop) => stop,
        Err(_) => std::future::pending().await,
    }
}

/// Waits for the end of a scenario's run: every call over, nothing in flight, and the orchestrator
/// quiet for [`QUIET`] (not before the script's last action, never while the orchestrator is down), or
/// the scenario's duration.
async fn wait_until_over(
    sim: &SharedSim,
    member: &Member,
    down: &AtomicBool,
    not_before: SimInstant,
    deadline: SimInstant,
) {
    let clock = sim.clock();
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = tokio::time::sleep_until(clock.deadline(deadline)) => return,
        }
        let now = clock.now();
        if now >= deadline {
            return;
        }
        if now < not_before || down.load(Ordering::SeqCst) || member.quiet_for() < QUIET {
            continue;
        }
        let world = sim.world();
        // Timers of ended calls may stay scheduled; only a webhook can still reach the orchestrator.
        if world.calls_ended() && !world.deliveries_outstanding() && !world.has_effects() {
            return;
        }
    }
}

/// How to start the orchestrator: the target file's command with the variables ringback exports.
struct Launch<'a> {
    target: &'a TargetFile,
    command: &'a Command,
    file: &'a Path,
    exported: BTreeMap<String, String>,
    log: PathBuf,
}

/// One orchestrator process (not started yet) and the wiring of the worlds it serves.
#[derive(Clone)]
struct Instance {
    wiring: Wiring,
    process: Arc<Mutex<Process>>,
}

impl Launch<'_> {
    /// An orchestrator on a port of its own; `own` numbers one started for a single scenario (its log
    /// gets the number).
    async fn instance(&self, own: Option<usize>) -> Result<Instance, String> {
        let port = free_port().await?;
        let mut values = self.exported.clone();
        values.insert("port".into(), port.to_string());
        values.insert("PORT".into(), port.to_string());
        let url = fill(&self.target.url, &values);
        values.insert("url".into(), url.clone());
        debug_assert!(EXPORTED.iter().all(|name| values.contains_key(*name)));
        let log = match own {
            None => self.log.clone(),
            Some(n) => {
                let stem = self
                    .log
                    .file_stem()
                    .map_or_else(|| "orchestrator".into(), |s| s.to_string_lossy().into_owned());
                self.log.with_file_name(format!("{stem}-{n}.log"))
            }
        };
        let process = Process::new(self.command, self.file, &values, &url, &log)?;
        Ok(Instance { wiring: wiring(self.target, &url), process: Arc::new(Mutex::new(process)) })
    }
}

/// The world's wiring for the target at `url`.
fn wiring(target: &TargetFile, url: &str) -> Wiring {
    let join = |hook: &str| {
        if hook.starts_with("http://") || hook.starts_with("https://") {
            hook.to_owned()
        } else {
            format!("{}{hook}", url.trim_end_matches('/'))
        }
    };
    let c = &target.credentials;
    let transfer = match &target.transfer {
        Transfer::Tool { name, arguments } => AssistantTransfer::Tool {
            name: name.clone(),
            arguments: ToolArguments::Templates(arguments.clone()),
        },
        Transfer::PhoneCallControl => AssistantTransfer::CallControl,
        Transfer::TransferDestinationRequest => AssistantTransfer::DestinationRequest,
    };
    Wiring {
        voice_url: join(&target.webhooks.voice),
        voice_fallback_url: target.webhooks.voice_fallback.as_deref().map(join),
        status_callback: target.webhooks.status.as_deref().map(join),
        server_url: join(&target.webhooks.vapi),
        webhook_secret: c.vapi_webhook_secret.clone(),
        // The target file's check made sure this parses.
        account: c.twilio_account_sid.parse().unwrap_or(ringback_scenarios::plan::ACCOUNT),
        auth_token: c.twilio_auth_token.clone(),
        vapi_api_key: c.vapi_api_key.clone(),
        assistant_id: c.vapi_assistant_id.clone(),
        phone_number_id: c.vapi_phone_number_id.clone(),
        service_number: c.twilio_number.clone(),
        transfer,
    }
}

/// The orchestrator's process, as the target file's command starts it.
#[derive(Debug)]
struct Process {
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    ready: String,
    ready_timeout: Duration,
    log: PathBuf,
    child: Option<tokio::process::Child>,
}

impl Process {
    fn new(
        command: &Command,
        file: &Path,
        values: &BTreeMap<String, String>,
        url: &str,
        log: &Path,
    ) -> Result<Process, String> {
        let folder = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let cwd = match &command.cwd {
            Some(cwd) => folder.join(cwd),
            None => folder.to_owned(),
        };
        // Absolute, so that a relative program path means one thing whatever the platform does with a
        // child's working folder.
        let cwd = cwd
            .canonicalize()
            .map_err(|e| format!("`command.cwd` is {}, which cannot be used: {e}", cwd.display()))?;
        let mut run = command.run.iter().map(|a| fill(a, values));
        let program = PathBuf::from(run.next().unwrap_or_default());
        // A program given as a path is relative to the command's folder, not to ringback's.
        let program = if program.components().count() > 1 && program.is_relative() {
            cwd.join(program)
        } else {
            program
        };
        let mut env: Vec<(String, String)> = EXPORTED
            .iter()
            .filter_map(|name| values.get(*name).map(|v| ((*name).to_owned(), v.clone())))
            .collect();
        env.extend(command.env.iter().map(|(name, value)| (name.clone(), fill(value, values))));
        let ready = fill(&command.ready, values);
        let ready =
            if ready.starts_with('/') { format!("{}{ready}", url.trim_end_matches('/')) } else { ready };
        Ok(Process {
            program,
            args: run.collect(),
            cwd,
            env,
            ready,
            ready_timeout: Duration::from_secs_f64(command.ready_timeout_s),
            log: log.to_owned(),
            child: None,
        })
    }

    /// Starts the orchestrator and waits until its readiness URL answers 2xx.
    async fn start(&mut self) -> Result<(), String> {
        let what = format!("`{}` (in {})", self.program.display(), self.cwd.display());
        if let Some(parent) = self.log.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open the orchestrator's log {}: {e}", self.log.display()))?;
        let stderr = log.try_clone().map_err(|e| format!("cannot share the log file: {e}"))?;
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // Both Twilio SDKs rewrite the API host when these are set.
            .env_remove("TWILIO_EDGE")
            .env_remove("TWILIO_REGION")
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("the command {what} did not start: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let deadline = tokio::time::Instant::now() + self.ready_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the command {what} exited ({status}) before it became ready; its output:\n{}",
                    self.tail()
                ));
            }
            if let Ok(response) = client.get(&self.ready).send().await
                && response.status().is_success()
            {
                self.child = Some(child);
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill().await;
                return Err(format!(
                    "the command {what} was not ready within {} s: {} never answered 2xx; its output:\n{}",
                    self.ready_timeout.as_secs_f64(),
                    self.ready,
                    self.tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the orchestrator, as a crash would.
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// The last lines of the orchestrator's output.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() { "(nothing)".into() } else { tail }
    }
}

async fn bind() -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("cannot listen on loopback: {e}"))
}

/// A loopback port nobody listens on now, for the orchestrator.
async fn free_port() -> Result<u16, String> {
    let listener = bind().await?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Now, in Unix seconds: real-time runs date their resources from the wall clock (`sim` never reads it).
pub fn wall_clock_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
