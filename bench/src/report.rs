//! The table: one row per figure, with its budget from SPEC §8 and whether it is met; and
//! `BENCHMARKS.md`, the table with the machine it ran on and what each row measures.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::Outcome;
use crate::scenarios::Throughput;
use crate::webhooks::Latency;

/// A number and its unit.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    pub value: f64,
    pub unit: &'static str,
}

/// A budget: a bound on a figure.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    bound: f64,
    unit: &'static str,
    at_least: bool,
}

impl Budget {
    pub fn at_least(bound: f64, unit: &'static str) -> Budget {
        Budget { bound, unit, at_least: true }
    }

    pub fn under(bound: f64, unit: &'static str) -> Budget {
        Budget { bound, unit, at_least: false }
    }

    fn describe(&self) -> String {
        format!("{} {} {}", if self.at_least { "≥" } else { "<" }, num(self.bound), self.unit)
    }

    /// "met", or by how much it is missed.
    fn judge(&self, value: f64) -> String {
        let met = if self.at_least { value >= self.bound } else { value < self.bound };
        if met {
            "met".to_owned()
        } else if self.at_least {
            format!("MISSED: {:.1}× short", self.bound / value)
        } else {
            format!("MISSED: {:.1}× over", value / self.bound)
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub what: String,
    pub measured: String,
    pub budget: String,
    pub verdict: String,
}

impl Row {
    fn new(what: impl Into<String>, measured: String, budget: Option<Budget>, value: f64) -> Row {
        Row {
            what: what.into(),
            measured,
            budget: budget.map_or_else(|| "—".to_owned(), |b| b.describe()),
            verdict: budget.map_or_else(|| "—".to_owned(), |b| b.judge(value)),
        }
    }

    fn not_measured(what: impl Into<String>, why: &str, budget: Option<Budget>) -> Row {
        Row {
            what: what.into(),
            measured: format!("not measured: {}", why.lines().next().unwrap_or(why)),
            budget: budget.map_or_else(|| "—".to_owned(), |b| b.describe()),
            verdict: "not measured".to_owned(),
        }
    }

    fn failures(t: &Throughput) -> String {
        if t.failures == 0 { String::new() } else { format!(" ({} FAILED)", t.failures) }
    }

    pub fn scenarios(what: &str, t: &Throughput, budget: Option<Budget>) -> Row {
        let measured = format!(
            "{} runs/s on {} threads, {} µs CPU per run{}",
            num(t.runs_per_s()),
            t.threads,
            num(t.cpu_us_per_run()),
            Row::failures(t)
        );
        Row::new(what, measured, budget, t.runs_per_s())
    }

    pub fn library(t: &Throughput) -> Row {
        let measured = format!(
            "{} scenarios in {} ms wall on {} threads ({} runs/s), {} µs CPU per scenario{}",
            t.runs,
            num(t.wall_s * 1e3),
            t.threads,
            num(t.runs_per_s()),
            num(t.cpu_us_per_run()),
            Row::failures(t)
        );
        Row::new("the whole library", measured, Some(Budget::under(2_000.0, "ms")), t.wall_s * 1e3)
    }

    pub fn generated(t: &Throughput) -> Row {
        let measured = format!(
            "{} in {} s wall on {} threads ({} runs/s), {} µs CPU per scenario{}",
            t.runs,
            num(t.wall_s),
            t.threads,
            num(t.runs_per_s()),
            num(t.cpu_us_per_run()),
            Row::failures(t)
        );
        Row::new(
            "generated scenarios (drawn, run, checked)",
            measured,
            Some(Budget::under(10.0, "s")),
            t.wall_s,
        )
    }

    pub fn calls_create(
        fake: &Outcome,
        wiremock: Result<Outcome, String>,
        prism: Result<Outcome, String>,
    ) -> Vec<Row> {
        let describe = |o: &Outcome| {
            let errors = if o.errors == 0 { String::new() } else { format!(", {} errors", o.errors) };
            format!("{} req/s, p50 {} µs, p99 {} µs{errors}", num(o.per_s()), num(o.p50_us), num(o.p99_us))
        };
        let mut rows = vec![Row::new(
            "Calls create, fake Twilio (`ringback serve`)",
            describe(fake),
            Some(Budget::at_least(20_000.0, "req/s")),
            fake.per_s(),
        )];
        let within = Budget::under(2.0, "× slower than wiremock");
        match wiremock {
            Ok(w) => rows.push(Row::new(
                "Calls create, wiremock with a static body",
                format!("{}; fake is {:.2}× slower", describe(&w), w.per_s() / fake.per_s()),
                Some(within),
                w.per_s() / fake.per_s(),
            )),
            Err(why) => {
                rows.push(Row::not_measured("Calls create, wiremock with a static body", &why, Some(within)))
            }
        }
        let faster = Budget::at_least(10.0, "× faster than Prism");
        match prism {
            Ok(p) => rows.push(Row::new(
                "Calls create, Prism mock of the same spec",
                format!("{}; fake is {:.1}× faster", describe(&p), fake.per_s() / p.per_s()),
                Some(faster),
                fake.per_s() / p.per_s(),
            )),
            Err(why) => {
                rows.push(Row::not_measured("Calls create, Prism mock of the same spec", &why, Some(faster)))
            }
        }
        rows
    }

    pub fn webhooks(calls: usize, latency: Result<Latency, String>) -> Row {
        let what = format!("webhook latency, {calls} concurrent calls");
        let budget = (calls >= 500).then(|| Budget::under(1_000.0, "µs p99"));
        match latency {
            Ok(l) => {
                let errors = if l.errors == 0 { String::new() } else { format!(", {} errors", l.errors) };
                let measured = format!(
                    "p50 {} µs, p99 {} µs over {} webhooks{errors} (loopback ping p50 {} µs, p99 {} µs)",
                    num(l.p50_us),
                    num(l.p99_us),
                    l.webhooks,
                    num(l.ping_p50_us),
                    num(l.ping_p99_us)
                );
                Row::new(what, measured, budget, l.p99_us)
            }
            Err(why) => Row::not_measured(what, &why, budget),
        }
    }

    pub fn soak(journal: &str, soak: Result<serde_json::Value, String>) -> Row {
        let what = format!("memory per finished call, 100,000 calls, journal {journal}");
        let budget = Some(Budget::under(16.0, "KiB"));
        match soak {
            Ok(v) => {
                let bytes = v["bytes_per_call"].as_f64().unwrap_or(f64::NAN);
                let measured = format!(
                    "{:.2} KiB ({} bytes of live heap, {} journal lines kept)",
                    bytes / 1024.0,
                    num(v["heap_growth_bytes"].as_f64().unwrap_or(f64::NAN)),
                    v["journal_entries"]
                );
                Row::new(what, measured, budget, bytes / 1024.0)
            }
            Err(why) => Row::not_measured(what, &why, budget),
        }
    }

    pub fn cold_start(figure: Result<Figure, String>) -> Row {
        let what = "cold start, `ringback run` to its first verdict";
        match figure {
            Ok(f) => Row::new(what, format!("{} {} (median of 10)", num(f.value), f.unit), None, f.value),
            Err(why) => Row::not_measured(what, &why, None),
        }
    }
}

/// A number for people: thousands separated, no more digits than it has.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    if x.abs() < 10.0 {
        return format!("{x:.2}");
    }
    if x.abs() < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// The rows as a Markdown table (which also reads well on a terminal).
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| measurement | measured | budget (SPEC §8) | verdict |\n|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(out, "| {} | {} | {} | {} |", r.what, r.measured, r.budget, r.verdict);
    }
    out
}

/// The machine: CPU model, cores, memory, kernel, compiler.
pub fn machine(build: &str) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or_else(|| "unknown memory".to_owned(), |kib| format!("{:.1} GiB RAM", kib / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{model}, {cores} cores available, {memory}, Linux {kernel}; {rustc}, `{build}`")
}

/// `BENCHMARKS.md`.
pub fn markdown(rows: &[Row], machine: &str, period: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask bench` (do not edit by hand: the notes come from `bench/notes.md`). \
         Budgets are SPEC §8's; ratios are against baselines measured in the same run.\n"
    );
    let _ = writeln!(out, "**Machine:** {machine}\n");
    out.push_str(&table(rows));
    let _ = writeln!(out, "\n## What each row measures\n");
    let _ = writeln!(
        out,
        "- **Scenario rows** run in process against the reference orchestrator (`ringback::run::run_reference`: a \
         fresh world and orchestrator on a current-thread tokio runtime with a paused clock, then the rules), \
         each run checked (every caller ends as expected, no rule broken). Runs per second is runs over wall \
         time with one worker per thread; CPU per run is the process's user + system time (`/proc/self/stat`) \
         over the runs. *One busy scenario* repeats `busy-returns-the-caller` for about 3 s. *The whole \
         library* parses, plans and runs every library scenario of the reference orchestrator once on the threads (the vapi-native ones are skipped), as `ringback run --jobs \
         N` does (median of 5 passes). *Generated scenarios* draws 10,000 scenarios from \
         `ringback_scenarios::generate::scenario()` (each thread from its own seeded RNG), makes each concrete, \
         runs it and checks it, as `ringback fuzz` does per case (which runs them on one thread)."
    );
    let _ = writeln!(
        out,
        "- **Calls create** is `POST /2010-04-01/Accounts/AC…/Calls.json` (Basic auth, `To` a busy phone, `From` \
         an owned number, `Url`), sent by a closed-loop driver (`bench/src/load.rs`: hyper, 16 keep-alive \
         connections, one thread, 1 s warm-up then 5 s measured) to each server in turn, each in its own \
         process on loopback: the fake Twilio as `ringback serve` runs it with an account sized for load (calls dialed as they are created rather than at the default 1 per second, 1,000 requests in flight; the webhook rows use it too), journaling every exchange, creating \
         a call that ends busy; a wiremock 0.6 `MockServer` answering the same path with the fake's own \
         response body as a static body (default settings, so it records requests as wiremock users get \
         it), and Prism's stateless mock (`prism mock`) of `fixtures/specs/twilio_api_v2010.json`. p50/p99 are \
         of request latency as the driver sees it (16 requests in flight)."
    );
    let _ = writeln!(
        out,
        "- **Webhook latency**: `ringback serve` with N calls answered and parked on a target in the bench \
         process that answers every webhook at once with `<Pause length=\"3600\"/>`. Each call then loops: \
         wait a random pause (uniform, 0 to {} ms), redirect the call with `POST /Calls/{{Sid}}.json \
         Url=…/hook`, and wait for the fake's fetch of that URL. The latency is from the moment the client \
         starts sending the redirect to the moment the target's handler sees the fetch: everything the fake \
         does between the event and the webhook arriving (reading and journaling the REST request, \
         redirecting the call, building and signing the webhook, sending it), including two loopback hops; \
         the loopback ping (a bare GET from the same client to the target, under the same load) is given for \
         scale. 10 s measured per run.",
        2 * period.as_millis()
    );
    let _ = writeln!(
        out,
        "- **Memory per finished call** (`ringback-soak`, a counting global allocator): one world in virtual \
         time whose number's webhooks are answered in process (`<Say>Hello</Say><Hangup/>`, then a `completed` \
         status callback); 100,000 inbound calls in batches of 1,000, each run to the end. The figure is the \
         live heap after the last call ended minus the live heap before the first, over 100,000: everything \
         the world keeps about a finished call (its leg, its journal lines). The journal keeps every line; the world has no \
         summarized mode (see the notes)."
    );
    let _ = writeln!(
        out,
        "- **Cold start**: wall time from spawning `ringback run scenarios/library/busy-returns-the-caller.toml` \
         to reading its first line (the verdict), median of 10."
    );
    if let Ok(notes) = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/notes.md")) {
        let _ = writeln!(out, "\n{}", notes.trim_end());
    }
    out
}
