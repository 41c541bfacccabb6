//! `ringback run` and `ringback rules`: the scenario library (or given files) against a target, judged.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
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

/// A scenario to run: its name and where it came from.
struct Named {
    name: String,
    scenario: Scenario,
}

/// What `--target` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The reference orchestrator, in process.
    Reference,
    /// The fake Vapi transferring by itself.
    VapiNative,
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
                ringback::target::TargetFile::load(path)?;
                bail!(
                    "target file {file} is valid, but this version runs only `reference` (the in-process \
                     reference orchestrator) and `vapi-native` (the fake Vapi's own transfers); running an \
                     external orchestrator is not supported yet"
                )
            }
        }
    }

    /// Whether `scenario` is written for this target: a `[native]` scenario for `vapi-native`, any other
    /// for an orchestrator.
    fn runs(self, scenario: &Scenario) -> bool {
        scenario.native.is_some() == (self == Target::VapiNative)
    }
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let target = Target::parse(&args.target)?;
    let scenarios = load(&args.paths).map_err(|errors| {
        anyhow::anyhow!(
            "{} bad scenario file(s):\n{}",
            errors.len(),
            errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
        )
    })?;
    if scenarios.is_empty() {
        bail!("no scenario files (*.toml) found in {}", show(&args.paths));
    }
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
            Target::Reference => ("vapi-native", "run them with `--target vapi-native`"),
        };
        say!(
            "skipped {} {kind} scenario(s) that do not apply to target `{}` ({hint})",
            skipped.len(),
            args.target
        );
    }
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(&report::json(&verdicts, &args.target)).context("rendering JSON")?;
        write_atomically(path, &text)?;
    }
    if let Some(path) = &args.junit {
        write_atomically(path, &report::junit(&verdicts))?;
    }
    if let Some(path) = &args.report {
        write_atomically(path, &report::markdown(&verdicts, &args.target))?;
    }
    if verdicts.iter().any(|v| v.outcome.is_err()) {
        return Ok(ExitCode::from(2));
    }
    Ok(if verdicts.iter().all(Verdict::passed) { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
    let rules = match &plan.rules {
        Some(only) => RULES.iter().map(|r| r.id).filter(|id| only.iter().any(|o| o == id)).collect(),
        None => RULES.iter().map(|r| r.id).collect(),
    };
    Verdict {
        name: named.name.clone(),
        description: named.scenario.description.clone(),
        seed: plan.seed,
        rules,
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
