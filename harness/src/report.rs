//! What a run of scenarios produces: a verdict per scenario, and its renderings: a terminal line, JSON
//! (verdicts and journals), JUnit XML (a testcase per scenario × rule) and a Markdown report with a
//! Mermaid sequence diagram of every failing scenario.

use std::fmt::Write as _;

use indexmap::IndexMap;
use ringback_sim::journal::{Entry, Event, Journal, Party};
use serde_json::{Value, json};

use crate::rules::{self, Level, RULES, Violation};
use crate::run::{CallerOutcome, Run};

/// One scenario's result.
#[derive(Debug)]
pub struct Verdict {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// The rules that apply (all unless the scenario lists some).
    pub rules: Vec<&'static str>,
    pub outcome: Result<Run, String>,
}

impl Verdict {
    /// Broken rules of level MUST.
    pub fn must_broken(&self) -> Vec<&Violation> {
        self.violations().into_iter().filter(|v| level(v.rule) == Level::Must).collect()
    }

    pub fn violations(&self) -> Vec<&Violation> {
        self.outcome.as_ref().map(|r| r.violations.iter().collect()).unwrap_or_default()
    }

    /// Callers whose outcome is not the one the scenario expects.
    pub fn unexpected(&self) -> Vec<&CallerOutcome> {
        self.outcome.as_ref().map(|r| r.callers.iter().filter(|c| !c.ok()).collect()).unwrap_or_default()
    }

    /// Every MUST rule held and every caller ended as expected.
    pub fn passed(&self) -> bool {
        self.outcome.is_ok() && self.must_broken().is_empty() && self.unexpected().is_empty()
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let run = match &self.outcome {
            Err(e) => return format!("ERROR {}: {e}", self.name),
            Ok(run) => run,
        };
        // One entry per broken rule, at its first break: a target that breaks a rule on every one of a
        // thousand calls still gets one readable line.
        let mut broken: IndexMap<&str, (String, usize, String)> = IndexMap::new();
        for v in self.must_broken() {
            let entry = broken.entry(v.rule).or_insert_with(|| (v.at.to_string(), 0, String::new()));
            entry.1 += 1;
            entry.2 = v.at.to_string();
        }
        let mut problems: Vec<String> = broken
            .into_iter()
            .map(|(rule, (first, count, last))| match count {
                1 => format!("{rule} at {first}"),
                _ => format!("{rule} at {first} (and {} more, the last at {last})", count - 1),
            })
            .collect();
        for c in self.unexpected() {
            problems.push(format!(
                "caller {} expected {} but was {}",
                c.number,
                c.expected.as_str(),
                c.observed.as_str()
            ));
        }
        let should: Vec<&str> = self
            .violations()
            .into_iter()
            .filter(|v| level(v.rule) == Level::Should)
            .map(|v| v.rule)
            .collect();
        let end = run.journal.entries().last().map(|e| e.at.to_string()).unwrap_or_default();
        let mut line = if problems.is_empty() {
            format!("PASS  {}  (seed {}, {} simulated)", self.name, self.seed, end)
        } else {
            format!("FAIL  {}  (seed {}): {}", self.name, self.seed, problems.join("; "))
        };
        if !should.is_empty() {
            let _ = write!(line, "  [SHOULD: {}]", dedup(should).join(", "));
        }
        line
    }
}

fn level(rule: &str) -> Level {
    rules::rule(rule).map_or(Level::Must, |r| r.level)
}

fn dedup(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The summary line.
pub fn summary(verdicts: &[Verdict]) -> String {
    let failed = verdicts.iter().filter(|v| !v.passed()).count();
    let errors = verdicts.iter().filter(|v| v.outcome.is_err()).count();
    format!(
        "{} scenarios: {} passed, {} failed{}",
        verdicts.len(),
        verdicts.len() - failed,
        failed - errors,
        if errors > 0 { format!(", {errors} could not run") } else { String::new() }
    )
}

/// Verdicts and full journals, deterministic for a seed and target (no wall-clock figures).
pub fn json(verdicts: &[Verdict], target: &str) -> Value {
    let scenarios: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            let mut item = json!({
                "name": v.name,
                "description": v.description,
                "seed": v.seed,
                "passed": v.passed(),
            });
            match &v.outcome {
                Err(e) => item["error"] = json!(e),
                Ok(run) => {
                    item["callers"] = run
                        .callers
                        .iter()
                        .map(|c| {
                            json!({"number": c.number, "call": c.call.map(|s| s.to_string()),
                                   "expected": c.expected.as_str(), "observed": c.observed.as_str(), "ok": c.ok()})
                        })
                        .collect();
                    item["violations"] = run.violations.iter().map(violation_json).collect();
                    item["journal"] = serde_json::to_value(run.journal.entries()).unwrap_or(Value::Null);
                }
            }
            item
        })
        .collect();
    json!({
        "target": target,
        "summary": summary(verdicts),
        "passed": verdicts.iter().all(Verdict::passed),
        "scenarios": scenarios,
    })
}

fn violation_json(v: &Violation) -> Value {
    json!({
        "rule": v.rule,
        "level": if level(v.rule) == Level::Must { "MUST" } else { "SHOULD" },
        "at_s": v.at.as_micros() as f64 / 1e6,
        "message": v.message,
        "lines": v.lines,
    })
}

/// JUnit XML: a suite per scenario, a testcase per rule that applies and one for the expected outcome.
pub fn junit(verdicts: &[Verdict]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("ringback");
    for v in verdicts {
        let mut suite = TestSuite::new(v.name.as_str());
        match &v.outcome {
            Err(e) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(e.as_str());
                suite.add_test_case(TestCase::new("run", status));
            }
            Ok(run) => {
                for rule in &v.rules {
                    let broken: Vec<&Violation> = run.violations.iter().filter(|x| x.rule == *rule).collect();
                    let status = if broken.is_empty() {
                        TestCaseStatus::success()
                    } else {
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        status.set_message(format!(
                            "{} broken at {}: {}",
                            rule, broken[0].at, broken[0].message
                        ));
                        let lines: Vec<String> = broken
                            .iter()
                            .map(|b| format!("{} {}\n{}", b.at, b.message, lines_of(&run.journal, &b.lines)))
                            .collect();
                        status.set_description(format!("seed {}\n{}", v.seed, lines.join("\n")));
                        status
                    };
                    suite.add_test_case(TestCase::new(*rule, status));
                }
                let unexpected = v.unexpected();
                let status = if unexpected.is_empty() {
                    TestCaseStatus::success()
                } else {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let text: Vec<String> = unexpected
                        .iter()
                        .map(|c| {
                            format!(
                                "caller {} expected {} but was {}",
                                c.number,
                                c.expected.as_str(),
                                c.observed.as_str()
                            )
                        })
                        .collect();
                    status.set_message(text.join("; "));
                    status
                };
                suite.add_test_case(TestCase::new("expected-outcome", status));
            }
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_else(|e| format!("<!-- cannot render JUnit XML: {e} -->"))
}

/// The journal lines with these sequence numbers, as timeline lines.
pub fn lines_of(journal: &Journal, seqs: &[u64]) -> String {
    journal
        .entries()
        .iter()
        .filter(|e| seqs.contains(&e.seq))
        .map(|e| ringback_sim::journal::TimelineLine(e).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Markdown report: a table of every verdict, then each failing scenario with its broken rules, the
/// journal lines that show them and a sequence diagram.
pub fn markdown(verdicts: &[Verdict], target: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# ringback report\n\nTarget: `{target}`. {}.\n", summary(verdicts));
    let _ = writeln!(out, "| scenario | seed | verdict | broken rules | callers |\n|---|---|---|---|---|");
    for v in verdicts {
        let verdict = match (&v.outcome, v.passed()) {
            (Err(_), _) => "⚠️ error",
            (_, true) => "✅ pass",
            (_, false) => "❌ fail",
        };
        let broken = dedup(v.violations().iter().map(|x| x.rule).collect()).join(", ");
        let callers = match &v.outcome {
            Ok(run) => run
                .callers
                .iter()
                .map(|c| {
                    format!(
                        "{} ({})",
                        c.observed.as_str(),
                        if c.ok() { "as expected" } else { c.expected.as_str() }
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => e.replace('|', "\\|"),
        };
        let callers = if callers.len() > 120 {
            format!("{}…", &callers[..callers.floor_char_boundary(117)])
        } else {
            callers
        };
        let _ = writeln!(out, "| `{}` | {} | {verdict} | {broken} | {callers} |", v.name, v.seed);
    }
    for v in verdicts.iter().filter(|v| !v.passed()) {
        let _ = writeln!(out, "\n## ❌ `{}` (seed {})\n\n{}\n", v.name, v.seed, v.description);
        let Ok(run) = &v.outcome else {
            let _ = writeln!(out, "Could not run: {}", v.outcome.as_ref().err().map_or("", |e| e.as_str()));
            continue;
        };
        for c in v.unexpected() {
            let _ = writeln!(
                out,
                "- caller {} was expected to be **{}** but was **{}**",
                c.number,
                c.expected.as_str(),
                c.observed.as_str()
            );
        }
        for x in &run.violations {
            let rule = rules::rule(x.rule);
            let _ = writeln!(
                out,
                "- **`{}`** ({}) broke at {}: {}\n\n  > {}\n\n```text\n{}\n```",
                x.rule,
                if level(x.rule) == Level::Must { "MUST" } else { "SHOULD" },
                x.at,
                x.message,
                rule.map_or("", |r| r.summary),
                lines_of(&run.journal, &x.lines)
            );
        }
        let _ = writeln!(out, "\n```mermaid\n{}```", mermaid(&run.journal, &run.violations));
    }
    let _ = writeln!(out, "\n## Rules\n\n| id | level | the orchestrator must … |\n|---|---|---|");
    for r in &RULES {
        let level = if r.level == Level::Must { "MUST" } else { "SHOULD" };
        let _ = writeln!(out, "| `{}` | {level} | {} |", r.id, r.summary.replace('|', "\\|"));
    }
    out
}

/// The most messages a diagram shows; longer runs are cut with a note.
const DIAGRAM_MESSAGES: usize = 150;

/// A Mermaid sequence diagram of caller, Twilio, orchestrator, Vapi and specialists, from the journal.
pub fn mermaid(journal: &Journal, violations: &[Violation]) -> String {
    let mut out = String::from(
        "sequenceDiagram\n    participant C as Caller\n    participant T as Twilio\n    participant O as Orchestrator\n    participant V as Vapi\n    participant S as Specialist\n",
    );
    let callers: Vec<String> = journal
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            Event::CallCreated { call, direction, .. } if direction == "inbound" => Some(call.to_string()),
            _ => None,
        })
        .collect();
    let mut shown = 0;
    for entry in journal.entries() {
        if shown >= DIAGRAM_MESSAGES {
            let _ = writeln!(
                out,
                "    Note over C,S: … {} more journal lines",
                journal.len() as u64 - entry.seq + 1
            );
            break;
        }
        if let Some(line) = diagram_line(entry, &callers) {
            let _ = writeln!(out, "    {line}");
            shown += 1;
        }
        for v in violations.iter().filter(|v| v.lines.last() == Some(&entry.seq)) {
            let _ = writeln!(out, "    Note over C,S: ❌ {} at {}", v.rule, v.at);
        }
    }
    out
}

fn diagram_line(entry: &Entry, callers: &[String]) -> Option<String> {
    let at = entry.at.to_string();
    let party = |p: Party| match p {
        Party::Twilio => "T",
        Party::Vapi => "V",
        Party::Target | Party::Client => "O",
    };
    match &entry.event {
        Event::CallCreated { call, direction, to, .. } => Some(if direction == "inbound" {
            format!("C->>T: {at} dials {to} ({})", short(&call.to_string()))
        } else {
            format!("T->>S: {at} rings {to} ({})", short(&call.to_string()))
        }),
        Event::Says { text, .. } => Some(format!("C->>V: {at} says {}", clean(text, 40))),
        Event::Detection { answered_by, .. } => Some(format!("S-->>T: {at} AMD: {answered_by}")),
        Event::Participant { call, joined: true, .. } => {
            let who = if callers.contains(&call.to_string()) { "C" } else { "S" };
            Some(format!("Note over {who},T: {at} joins conference"))
        }
        Event::Transition { entity: ringback_sim::journal::Entity::Call(call), to, cause, .. }
            if matches!(to.as_str(), "completed" | "busy" | "no-answer" | "failed" | "canceled") =>
        {
            let who = if callers.contains(&call.to_string()) { "C" } else { "S" };
            Some(format!("{who}-->>T: {at} {to} ({})", clean(cause.as_deref().unwrap_or(""), 30)))
        }
        Event::Http(x) => {
            let (from, to) = (party(x.from), party(x.to));
            if from == to {
                return None;
            }
            let what = http_label(x);
            if what.is_empty() {
                return None;
            }
            let answer = match (&x.response, &x.error) {
                (Some(r), _) => r.status.to_string(),
                (None, Some(e)) => clean(e, 20),
                (None, None) => "no answer".into(),
            };
            let fault = x.fault.as_deref().map(|f| format!(" [{}]", clean(f, 30))).unwrap_or_default();
            Some(format!("{from}->>{to}: {at} {what}{fault} ⇒ {answer}"))
        }
        _ => None,
    }
}

/// A short label for an exchange; empty for chatter not worth a diagram line.
fn http_label(x: &ringback_sim::journal::HttpExchange) -> String {
    let path = crate::rules::wire::path_of(&x.url);
    // Twilio's `/2010-04-01/Accounts/AC…/Calls/CA….json` reads as `/Calls/CA….json`.
    let path = match path.split_once("/Accounts/") {
        Some((_, rest)) => rest.find('/').map_or(path, |i| &rest[i..]),
        None => path,
    };
    let last = path.trim_start_matches('/');
    if x.request_body.trim_start().starts_with('{') {
        let kind = serde_json::from_str::<Value>(&x.request_body)
            .ok()
            .and_then(|v| v.pointer("/message/type").and_then(Value::as_str).map(str::to_owned));
        return match kind.as_deref() {
            Some("speech-update" | "conversation-update" | "status-update") => String::new(),
            Some(kind) => kind.to_owned(),
            None => format!("{} /{last}", x.method),
        };
    }
    let params = crate::rules::wire::form_pairs(&x.request_body);
    let mut label = format!("{} /{last}", x.method);
    for name in ["CallStatus", "AnsweredBy", "Status", "To"] {
        if let Some(value) = crate::rules::wire::param(&params, name) {
            let _ = write!(label, " {name}={value}");
        }
    }
    if crate::rules::wire::param(&params, "Twiml").is_some() {
        label.push_str(" Twiml=…");
    }
    label
}

fn short(sid: &str) -> String {
    sid.chars().take(8).collect()
}

/// Text safe inside a Mermaid message: no `;`, `#` or line breaks, and not too long.
fn clean(text: &str, max: usize) -> String {
    let text: String =
        text.chars().map(|c| if matches!(c, ';' | '#' | '\n' | '\r') { ' ' } else { c }).collect();
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max).collect::<String>())
    } else {
        text
    }
}
