//! `cargo xtask`: the single entry point for what CI runs, so a green `cargo xtask ci` on a laptop means a
//! green CI.
//!
//! - `cargo xtask ci`: install the SDK test dependencies, then fmt, clippy `-D warnings`, a check that the
//!   fuzz targets build, the tests with `INSTA_UPDATE=no`, and the docs with warnings denied.
//! - `cargo xtask sdk-deps`: install the official Twilio and Vapi SDKs (npm and PyPI) that the
//!   compatibility tests drive, into `target/sdk/`, and the example orchestrators' dependencies, into
//!   `target/orchestrators/`.
//! - `cargo xtask bench`: build in release, install Prism into `target/bench/`, run every benchmark of
//!   SPEC §8 (`ringback-bench all`), print the table and write `BENCHMARKS.md`; then the divan micro
//!   benchmarks. Not part of `ci`: its figures depend on the machine.
//! - `cargo xtask fuzz [TARGET] [--seconds N]`: install cargo-fuzz if it is missing, then run one fuzz
//!   target of `fuzz/` (or each in turn) for N seconds (default 60). Not part of `ci`: libFuzzer needs
//!   nightly flags, which `RUSTC_BOOTSTRAP=1` allows on stable.
//! - `cargo xtask soak [--calls N] [--seed N] [--max-finished-calls N] [--json FILE]`: the hardening soak
//!   at full size (10,000 calls by default) in release: generated scenarios with random faults and
//!   restarts through one long-lived reference orchestrator, every scenario judged, the heap watched
//!   (`ringback-soak faults`). CI runs the same at 1,000 calls as a test (`harness/tests/soak.rs`).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool reports on its terminal

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("sdk-deps") => sdk_deps(),
        Some("bench") => bench(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("soak") => soak(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <ci|sdk-deps|bench|fuzz|soak>");
            eprintln!("  ci        everything CI runs: sdk-deps, fmt, clippy, tests, docs");
            eprintln!(
                "  sdk-deps  install the official Twilio and Vapi SDKs used by the compatibility tests, and the example orchestrators' dependencies"
            );
            eprintln!(
                "  bench     measure SPEC §8's budgets and write BENCHMARKS.md (release build, installs Prism)"
            );
            eprintln!(
                "  fuzz      [TARGET] [--seconds N]: run the fuzz targets of fuzz/ (installs cargo-fuzz)"
            );
            eprintln!(
                "  soak      [--calls N] [--seed N] [--max-finished-calls N] [--json FILE]: 10,000 calls with random faults through one reference orchestrator"
            );
            std::process::exit(2);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    println!("==> {step}");
    let started = std::time::Instant::now();
    let status = cmd.status().with_context(|| format!("could not start `{step}`"))?;
    if !status.success() {
        bail!("`{step}` failed ({status})");
    }
    println!("    {step}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn ci() -> Result<()> {
    sdk_deps()?;
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
    )?;
    // The fuzz targets are their own workspace, which nothing above builds: a changed parser signature
    // must not break them unseen. A check is enough (libFuzzer's instrumentation is `cargo xtask fuzz`'s).
    run(
        "fuzz targets (cargo check, fuzz/)",
        cargo().current_dir(root().join("fuzz")).args(["check", "--locked", "--bins"]),
    )?;
    let nextest = Command::new("cargo-nextest").arg("--version").output().is_ok_and(|o| o.status.success());
    if nextest {
        run(
            "tests",
            cargo()
                .args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"])
                .env("INSTA_UPDATE", "no")
                .env("CI", "true"),
        )?;
        run(
            "doctests",
            cargo().args(["test", "--workspace", "--locked", "--doc"]).env("INSTA_UPDATE", "no"),
        )?;
    } else {
        run(
            "tests",
            cargo().args(["test", "--workspace", "--locked"]).env("INSTA_UPDATE", "no").env("CI", "true"),
        )?;
    }
    run(
        "docs",
        cargo().args(["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // The conformance run: the built-in library against the reference orchestrator, with the reports a CI
    // job would publish.
    let out = root().join("target/ringback");
    std::fs::create_dir_all(&out).context("creating target/ringback")?;
    run(
        "conformance (ringback run)",
        cargo().args(["run", "--locked", "-q", "-p", "ringback", "--", "run"]).args([
            "--junit".into(),
            out.join("junit.xml").into_os_string(),
            "--report".into(),
            out.join("report.md").into_os_string(),
        ]),
    )?;
    println!("==> ci: all green");
    Ok(())
}

/// Installs the SDKs into `target/sdk/`: npm packages from `fixtures/sdk/package-lock.json`, PyPI packages
/// from `fixtures/sdk/requirements.txt` into a virtualenv. Tests find them there. Then the example
/// orchestrators' dependencies (see [`example_deps`]).
fn sdk_deps() -> Result<()> {
    let root = root();
    let out = root.join("target/sdk");
    npm_ci(
        "npm ci (twilio, @vapi-ai/server-sdk)",
        &root.join("fixtures/sdk"),
        &out.join("node"),
        &["twilio", "@vapi-ai/server-sdk"],
    )?;
    pip_install(
        "pip install (twilio, vapi_server_sdk)",
        &out.join("venv"),
        &root.join("fixtures/sdk/requirements.txt"),
    )?;
    example_deps()
}

/// Installs the example orchestrators' dependencies under `target/orchestrators/`, never in the source tree:
/// each Node example's `package.json` and `package-lock.json` are copied to `target/orchestrators/<name>/`
/// and `npm ci` runs there (the sources run in place, with `NODE_PATH` pointing at that `node_modules`); the
/// Python example gets the venv `target/orchestrators/python/venv`.
fn example_deps() -> Result<()> {
    let root = root();
    let examples = root.join("fixtures/orchestrators");
    let out = root.join("target/orchestrators");
    for name in ["node", "naive"] {
        npm_ci(
            &format!("npm ci (fixtures/orchestrators/{name})"),
            &examples.join(name),
            &out.join(name),
            &["express", "twilio", "@vapi-ai/server-sdk"],
        )?;
    }
    pip_install(
        "pip install (fixtures/orchestrators/python)",
        &out.join("python/venv"),
        &examples.join("python/requirements.txt"),
    )
}

/// Copies `package.json` and `package-lock.json` from `from` to `to`, runs `npm ci` in `to`, and checks
/// that each of `packages` was installed.
fn npm_ci(step: &str, from: &Path, to: &Path, packages: &[&str]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(from.join(file), to.join(file))
            .with_context(|| format!("copying {}", from.join(file).display()))?;
    }
    run(
        step,
        Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(to),
    )?;
    for package in packages {
        let manifest = to.join("node_modules").join(package).join("package.json");
        if !manifest.is_file() {
            bail!(
                "npm ci left {} incomplete (no {}); remove {} and retry",
                package,
                manifest.display(),
                to.display()
            );
        }
    }
    Ok(())
}

/// Creates the virtualenv `venv` if it does not exist, and pip-installs `requirements` into it.
fn pip_install(step: &str, venv: &Path, requirements: &Path) -> Result<()> {
    if !venv.join("bin/python").exists() {
        if let Some(parent) = venv.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        run("python venv", Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    run(
        step,
        Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(requirements),
    )
}

/// The Prism release the comparison is made with (npm `@stoplight/prism-cli`).
const PRISM: &str = "@stoplight/prism-cli@5.16.0";

/// Builds in release, installs Prism, runs `ringback-bench all` and the divan micro benchmarks.
fn bench() -> Result<()> {
    let root = root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).context("creating target/bench")?;
    run(
        "cargo build --release (ringback, ringback-bench)",
        release_cargo().args(["build", "--release", "--locked", "-p", "ringback", "-p", "ringback-bench"]),
    )?;
    let prism = install_prism(&out.join("node"));
    let release = root.join("target/release");
    let mut all = Command::new(release.join("ringback-bench"));
    all.current_dir(&root)
        .arg("all")
        .arg("--ringback")
        .arg(release.join("ringback"))
        .arg("--soak")
        .arg(release.join("ringback-soak"))
        .arg("--spec")
        .arg(root.join("fixtures/specs/twilio_api_v2010.json"))
        .arg("--scenario")
        .arg(root.join("scenarios/library/busy-returns-the-caller.toml"))
        .arg("--out")
        .arg(root.join("BENCHMARKS.md"))
        .arg("--scratch")
        .arg(out.join("scratch"))
        .args(["--build", "cargo build --release (CARGO_INCREMENTAL=0)"]);
    match &prism {
        Ok(path) => all.arg("--prism").arg(path),
        Err(why) => all.arg("--no-prism").arg(why),
    };
    run("ringback-bench all", &mut all)?;
    run(
        "micro benchmarks (divan)",
        // The release profile, so the benchmarks reuse the build above rather than build everything again.
        release_cargo().args([
            "bench",
            "--locked",
            "--profile",
            "release",
            "-p",
            "ringback-bench",
            "--bench",
            "scenarios",
            "--",
            "--sample-count",
            "20",
        ]),
    )?;
    Ok(())
}

/// `cargo` for a release build, without the variables `cargo run` set for xtask itself: build scripts
/// that watch them would otherwise see a change and rebuild everything on each `cargo xtask bench`.
fn release_cargo() -> Command {
    let mut cmd = cargo();
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&name.as_str());
        if set_by_cargo_run {
            cmd.env_remove(name);
        }
    }
    cmd.env("CARGO_INCREMENTAL", "0");
    cmd
}

/// Installs Prism into `dir` with npm; its executable, or why it could not be installed (the benchmark
/// row then says "not measured" with that reason).
fn install_prism(dir: &Path) -> std::result::Result<PathBuf, String> {
    let bin = dir.join("node_modules/.bin/prism");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    println!("==> npm install {PRISM} into {}", dir.display());
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error", "--prefix"])
        .arg(dir)
        .arg(PRISM)
        .output();
    match output {
        Err(e) => Err(format!("npm is not available ({e})")),
        Ok(o) if !o.status.success() => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let last =
                stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned();
            Err(format!("npm could not install {PRISM}: {last}"))
        }
        Ok(_) if !bin.is_file() => Err(format!("npm installed {PRISM} but left no {}", bin.display())),
        Ok(_) => Ok(bin),
    }
}

/// The fuzz targets of `fuzz/` (one per parser): the files of `fuzz/fuzz_targets/`, by name.
/// Builds `ringback-soak` in release and runs its hardening soak with `args` (its own flags).
fn soak(args: &[String]) -> Result<()> {
    run(
        "cargo build --release (ringback-soak)",
        release_cargo().args([
            "build",
            "--release",
            "--locked",
            "-p",
            "ringback-bench",
            "--bin",
            "ringback-soak",
        ]),
    )?;
    run(
        "ringback-soak faults",
        Command::new(root().join("target/release/ringback-soak")).arg("faults").args(args),
    )
}

fn fuzz_targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let mut targets = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            targets.push(stem.to_owned());
        }
    }
    targets.sort();
    Ok(targets)
}

fn fuzz(args: &[String]) -> Result<()> {
    let all = fuzz_targets()?;
    let mut target = None;
    let mut seconds = 60u64;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = rest.next().context("--seconds needs a number of seconds")?;
                seconds =
                    value.parse().with_context(|| format!("--seconds {value}: expected whole seconds"))?;
            }
            name if all.iter().any(|t| t == name) && target.is_none() => target = Some(name.to_owned()),
            other => bail!("`{other}` is not a fuzz target; expected one of {}", all.join(", ")),
        }
    }
    let installed = Command::new("cargo-fuzz").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        run("install cargo-fuzz", cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let targets = target.map_or(all, |t| vec![t]);
    for target in &targets {
        let target = target.as_str();
        // The fuzz crate is its own workspace with its own target folder (`fuzz/target`), so that its
        // sanitizer builds never invalidate the workspace's. The corpus grows in `fuzz/corpus/<target>`,
        // what fails in `fuzz/artifacts/<target>`. File parsers start from the real files, which random
        // bytes would take long to reach.
        let corpus = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        let seeds: &[&str] = match target {
            "scenario_file" => &["scenarios/library"],
            "target_file" => &["fixtures/targets"],
            _ => &[],
        };
        run(
            &format!("fuzz {target} for {seconds}s"),
            cargo()
                .current_dir(root().join("fuzz"))
                .env("RUSTC_BOOTSTRAP", "1")
                .env_remove("CARGO_TARGET_DIR")
                .args(["fuzz", "run", target])
                .arg(&corpus)
                .args(seeds.iter().map(|seed| root().join(seed)))
                .args(["--", &format!("-max_total_time={seconds}")]),
        )?;
    }
    Ok(())
}
