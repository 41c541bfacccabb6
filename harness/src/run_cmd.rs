//! `ringback run` and `ringback rules`: the scenario library (or given files) against a target, judged.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ringback::conform::Stop;
use ringback::report::{self, Verdict};
use ringback::rules::{Level, RULES};
use ringback_scenarios::{Scenario, ScenarioError};

/// Runs scenario files or folders (default: the built-in library) and judges every rule.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files or folders of them (default: the built-in library).
    pub paths: Vec<PathBuf>,
    /// `reference` (the reference orchestrator, in process, in virtual time), `vapi-native`, or a target
    /// file.
    #[arg(long, default_value = "reference")]
    pub target: String,
    /// The seed of every scenario that sets none.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scenarios run at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub outputs: Outputs,
}

/// The reports a run writes besides its verdict lines.
#[derive(Debug, clap::Args)]
pub struct Outputs {
    /// Write JUnit XML here (a testcase per scenario and rule).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a Markdown report here (verdict table, sequence diagrams of failures).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write verdicts and full journals as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Judges an orchestrator over HTTP: the scenarios that apply to it, at once, in real time.
#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    /// The target file (TOML): the orchestrator's webhooks, transfer style, credentials and the command
    /// that starts it (see `fixtures/targets/reference.toml`).
    #[arg(long)]
    pub target: PathBuf,
    /// Scenario files or folders of them (default: the built-in library).
    pub paths: Vec<PathBuf>,
    /// Real seconds per simulated second (0.1 makes a 30 s ring take 3 s). The orchestrator's own timers
    /// are not scaled.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// The seed of every scenario that sets none.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the orchestrator's output goes (default: `ringback-conform-NAME.log` in the temporary folder).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// A deadline for the whole run, in real seconds: scenarios still running then end unjudged, the
    /// reports hold the verdicts of those that finished, and the exit code is 1. Each scenario has its
    /// own deadline in any case, its duration.
    #[arg(long, value_name = "SECONDS")]
    pub deadline: Option<f64>,
    #[command(flatten)]
    pub outputs: Outputs,
}

/// A scenario to run: its name and where it came from.
struct Named {
    name: String,
    scenario: Scenario,
}

/// What `--target` names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// The reference orchestrator, in process.
    Reference,
    /// The fake Vapi transferring by itself.
    VapiNative,
    /// An orchestrator described by a target file: `ringback conform`.
    File(PathBuf),
}

impl Target {
    fn parse(target: &str) -> Result<Target> {
        match target {
            "reference" => Ok(Target::Reference),
            "vapi-native" => Ok(Target::VapiNative),
            file => {
                let path = Path::new(file);
                if !path.exists() {
                    bail!("target `{file}` is neither `reference`, `vapi-native` nor a target file");
                }
                Ok(Target::File(path.to_owned()))
            }
        }
    }

    /// Whether `scenario` is written for this target: a `[native]` scenario for `vapi-native`, any other
    /// for an orchestrator.
    fn runs(&self, scenario: &Scenario) -> bool {
        scenario.native.is_some() == (*self == Target::VapiNative)
    }
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let target = Target::parse(&args.target)?;
    if let Target::File(file) = target {
        return conform(ConformArgs {
            target: file,
            paths: args.paths,
            time_scale: 1.0,
            seed: args.seed,
            log: None,
            deadline: None,
            outputs: args.outputs,
        });
    }
    let scenarios = load_all(&args.paths)?;
    let (scenarios, skipped): (Vec<Named>, Vec<Named>) =
        scenarios.into_iter().partition(|n| target.runs(&n.scenario));
    if scenarios.is_empty() {
        bail!(
            "none of the {} scenarios in {} is for target `{}` ({})",
            skipped.len(),
            show(&args.paths),
            args.target,
            if target == Target::VapiNative {
                "a vapi-native scenario has a `[native]` section with the transferCall tool"
            } else {
                "every one has a `[native]` section: run them with `--target vapi-native`"
            }
        );
    }
    let jobs =
        args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let progress = progress_bar(scenarios.len());
    let verdicts = run_all(&scenarios, args.seed, jobs, &progress);
    progress.finish_and_clear();
    for v in &verdicts {
        say!("{}", v.line());
    }
    say!("{}", report::summary(&verdicts));
    if !skipped.is_empty() {
        let (kind, hint) = match target {
            Target::VapiNative => ("orchestrator", "they need an orchestrator target"),
            _ => ("vapi-native", "run them with `--target vapi-native`"),
        };
        say!(
            "skipped {} {kind} scenario(s) that do not apply to target `{}` ({hint})",
            skipped.len(),
            args.target
        );
    }
    finish(&verdicts, &args.outputs, &args.target)
}

/// Writes the reports asked for; the exit code the verdicts give.
fn finish(verdicts: &[Verdict], outputs: &Outputs, target: &str) -> Result<ExitCode> {
    if let Some(path) = &outputs.json {
        let text = serde_json::to_string_pretty(&report::json(verdicts, target)).context("rendering JSON")?;
        write_atomically(path, &text)?;
    }
    if let Some(path) = &outputs.junit {
        write_atomically(path, &report::junit(verdicts))?;
    }
    if let Some(path) = &outputs.report {
        write_atomically(path, &report::markdown(verdicts, target))?;
    }
    if verdicts.iter().any(|v| v.outcome.is_err()) {
        return Ok(ExitCode::from(2));
    }
    Ok(if verdicts.iter().all(Verdict::passed) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Every scenario in `paths` (default: the library), or every bad file's error.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Named>> {
    let scenarios = load(paths).map_err(|errors| {
        anyhow::anyhow!(
            "{} bad scenario file(s):\n{}",
            errors.len(),
            errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
        )
    })?;
    if scenarios.is_empty() {
        bail!("no scenario files (*.toml) found in {}", show(paths));
    }
    Ok(scenarios)
}

/// `ringback conform` (and `ringback run --target FILE`).
pub fn conform(args: ConformArgs) -> Result<ExitCode> {
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        bail!("--time-scale {}: expected a positive number", args.time_scale);
    }
    if let Some(deadline) = args.deadline.filter(|d| !(*d > 0.0 && d.is_finite())) {
        bail!("--deadline {deadline}: expected a positive number of seconds");
    }
    let target = ringback::target::TargetFile::load(&args.target)?;
    let name = target.name(&args.target);
    let scenarios = load_all(&args.paths)?;
    let mut chosen = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for named in scenarios {
        let plan = named.scenario.plan(args.seed);
        match ringback::conform::skip_reason(&target, &plan) {
            Some(reason) => skipped.push((named.name, reason)),
            None => chosen.push((named, plan)),
        }
    }
    let report_skips = || {
        let mut reasons: Vec<&str> = skipped.iter().map(|(_, r)| r.as_str()).collect();
        reasons.dedup();
        for reason in reasons {
            let names: Vec<&str> =
                skipped.iter().filter(|(_, r)| r == reason).map(|(n, _)| n.as_str()).collect();
            say!("skipped {} scenario(s) because {reason}: {}", names.len(), names.join(", "));
        }
    };
    if chosen.is_empty() {
        report_skips();
        bail!("none of the scenarios in {} applies to target {}", show(&args.paths), args.target.display());
    }
    let log = args.log.clone().unwrap_or_else(|| {
        let stem: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        std::env::temp_dir().join(format!("ringback-conform-{stem}.log"))
    });
    let _ = std::fs::remove_file(&log);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    // Ctrl-C, or the run's deadline, ends the scenarios still running (unjudged) and writes the reports of
    // those that finished.
    let (interrupt_tx, interrupt) = tokio::sync::watch::channel(None);
    let deadline = args.deadline.map(Duration::from_secs_f64);
    runtime.spawn(async move {
        let out_of_time = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let stop = tokio::select! {
            Ok(()) = tokio::signal::ctrl_c() => Stop::Interrupted,
            () = out_of_time => Stop::Deadline(deadline.unwrap_or_default()),
        };
        let _ = interrupt_tx.send(Some(stop));
    });
    let options = ringback::conform::Options {
        time_scale: args.time_scale,
        log: log.clone(),
        interrupt: interrupt.clone(),
    };
    let plans: Vec<_> = chosen.iter().map(|(_, plan)| plan.clone()).collect();
    say!(
        "ringback: {} scenario(s) against {name} ({}), in real time{}",
        plans.len(),
        args.target.display(),
        if args.time_scale == 1.0 { String::new() } else { format!(" scaled by {}", args.time_scale) }
    );
    let found = runtime
        .block_on(ringback::conform::conform(&target, &args.target, plans, &options))
        .map_err(|e| anyhow::anyhow!("target {}: {e}", args.target.display()))?;
    let stopped = *interrupt.borrow();
    let verdicts: Vec<Verdict> = chosen
        .iter()
        .zip(found.runs)
        .map(|((named, plan), outcome)| Verdict {
            name: named.name.clone(),
            description: named.scenario.description.clone(),
            seed: plan.seed,
            rules: applicable_rules(plan),
            outcome,
        })
        .collect();
    for v in &verdicts {
        say!("{}", v.line());
    }
    say!("{}", report::summary(&verdicts));
    report_skips();
    if !found.unattributed.is_empty() {
        let requests: Vec<String> = found.unattributed.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        say!(
            "requests that named no scenario's call, number or conference (a world with the account and no \
             callers answered them): {}",
            requests.join(", ")
        );
    }
    say!("the orchestrator's output: {}", log.display());
    let code = finish(&verdicts, &args.outputs, &name)?;
    if let Some(stop) = stopped {
        let finished = verdicts.iter().filter(|v| v.outcome.is_ok()).count();
        say!("{stop}: {finished} of {} scenarios finished; the reports hold their verdicts", verdicts.len());
        return Ok(match stop {
            // 128 + SIGINT, as shells report a command stopped by Ctrl-C.
            Stop::Interrupted => ExitCode::from(130),
            // Not every rule was shown to hold: the unfinished scenarios fail.
            Stop::Deadline(_) => ExitCode::from(1),
        });
    }
    Ok(code)
}

/// The rules a plan is judged by.
fn applicable_rules(plan: &ringback_scenarios::Plan) -> Vec<&'static str> {
    match &plan.rules {
        Some(only) => RULES.iter().map(|r| r.id).filter(|id| only.iter().any(|o| o == id)).collect(),
        None => RULES.iter().map(|r| r.id).collect(),
    }
}

/// Runs every scenario on `jobs` threads, each in its own world and runtime; verdicts in input order.
fn run_all(scenarios: &[Named], seed: u64, jobs: usize, progress: &indicatif::ProgressBar) -> Vec<Verdict> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(scenarios.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(scenarios.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(named) = scenarios.get(i) else { break };
                    let verdict = verdict(named, seed);
                    progress.inc(1);
                    results.lock().unwrap_or_else(|p| p.into_inner()).push((i, verdict));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, v)| v).collect()
}

fn verdict(named: &Named, seed: u64) -> Verdict {
    let plan = named.scenario.plan(seed);
    Verdict {
        name: named.name.clone(),
        description: named.scenario.description.clone(),
        seed: plan.seed,
        rules: applicable_rules(&plan),
        outcome: ringback::run::run(&plan),
    }
}

/// Loads the files and folders given, or the built-in library; every bad file is reported.
fn load(paths: &[PathBuf]) -> Result<Vec<Named>, Vec<ScenarioError>> {
    let mut named = Vec::new();
    let mut errors = Vec::new();
    if paths.is_empty() {
        for (name, scenario) in ringback_scenarios::library::scenarios() {
            match scenario {
                Ok(scenario) => named.push(Named { name, scenario }),
                Err(e) => errors.push(e),
            }
        }
    }
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect(),
                Err(e) => {
                    errors.push(ScenarioError {
                        file: path.clone(),
                        line: 0,
                        column: 0,
                        message: format!("cannot read the folder: {e}"),
                    });
                    continue;
                }
            };
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            match Scenario::load(&file) {
                Ok(scenario) => named.push(Named { name: stem(&file), scenario }),
                Err(e) => errors.push(e),
            }
        }
    }
    if errors.is_empty() { Ok(named) } else { Err(errors) }
}

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

fn show(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "the built-in library".into();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// A progress bar on a terminal for runs long enough to want one; hidden otherwise.
fn progress_bar(len: usize) -> indicatif::ProgressBar {
    if len < 20 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} scenarios {elapsed}") {
        bar.set_style(style);
    }
    bar
}

/// Writes `text` to `path` through a temporary file in the same folder, so a reader never sees half a
/// report.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().map_or("report".into(), |n| n.to_string_lossy())));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("moving the report into place at {}", path.display()))?;
    Ok(())
}

/// `ringback rules`: every rule with its level, deadline and how it is judged.
pub fn rules() {
    for r in &RULES {
        let level = if r.level == Level::Must { "MUST" } else { "SHOULD" };
        let deadline = r.deadline_s.map(|d| format!(", within {d} s")).unwrap_or_default();
        say!("{} ({level}{deadline})\n  {}\n  How it is judged: {}\n", r.id, r.summary, r.explanation);
    }
}

/// `ringback fuzz`: generated scenarios against a target; the first failure shrunk to a scenario file.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// How many generated scenarios to run.
    #[arg(long, default_value_t = 256)]
    pub cases: u32,
    /// The seed of the exploration: the same seed explores the same scenarios.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The target (only `reference` in this version).
    #[arg(long, default_value = "reference")]
    pub target: String,
    /// Where to write the shrunk counterexample (default: `ringback-counterexample-SEED.toml`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn fuzz(args: FuzzArgs) -> Result<ExitCode> {
    if args.target != "reference" {
        bail!(
            "target `{}` cannot be fuzzed yet: only `reference` (the in-process reference orchestrator) is \
             available in this version",
            args.target
        );
    }
    let report = ringback::fuzz::fuzz(args.cases, args.seed);
    let Some(failure) = report.failure else {
        say!(
            "{} generated scenarios (seed {}): every rule held and every caller ended as expected",
            report.cases_run,
            args.seed
        );
        return Ok(ExitCode::SUCCESS);
    };
    let out =
        args.out.unwrap_or_else(|| PathBuf::from(format!("ringback-counterexample-{}.toml", args.seed)));
    write_atomically(&out, &failure.toml)?;
    say!(
        "FAIL after {} generated scenarios (seed {}), shrunk in {} steps:\n{}\nthe minimal scenario is in {}; replay it with `ringback run {}`",
        report.cases_run,
        args.seed,
        failure.shrink_steps,
        failure.failure,
        out.display(),
        out.display()
    );
    Ok(ExitCode::from(1))
}
