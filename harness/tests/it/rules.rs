//! The conformance rules judged on real runs: small broken orchestrators each break the rule they were
//! built to break (and no MUST rule their breakage does not imply). That the reference orchestrator breaks
//! none is checked on the whole library (`library.rs`); here only on what scenario files cannot say: two
//! callers sharing one specialist line.

use std::collections::BTreeSet;

use ringback::reference::Reference;
use ringback::rules::{self, CallerContext, Context, Level, Violation};
use ringback_sim::ids::CallSid;
use ringback_sim::runtime::SharedSim;

use crate::broken::{self, Flaw};
use crate::reference::{
    CALLER, CALLER_2, NUMBER, SALES, SALES_BACKUP, SUPPORT, at_second, call_in, settle, start, timeline,
    world_with_faults,
};

/// What the scenario says: one service number, two possible callers who may reach every specialist.
fn context(machines: &[&str]) -> Context {
    let specialists: Vec<String> = [SALES, SALES_BACKUP, SUPPORT].map(str::to_owned).to_vec();
    Context {
        service_numbers: vec![NUMBER.to_owned()],
        callers: [CALLER, CALLER_2]
            .map(|number| CallerContext { number: number.to_owned(), specialists: specialists.clone() })
            .to_vec(),
        allowlist: specialists,
        machines: machines.iter().map(|m| (*m).to_owned()).collect(),
        tool_timeout_s: 20.0,
        vapi_native: false,
    }
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{} at {}: {} {:?}", v.rule, v.at, v.message, v.lines))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reference orchestrator's run breaks no rule.
fn assert_clean(r: &Reference, machines: &[&str]) {
    let violations = rules::evaluate(r.sim.world().journal(), &context(machines));
    assert!(violations.is_empty(), "{}\n\n{}", describe(&violations), timeline(r));
}

#[tokio::test(start_paused = true)]
async fn the_reference_breaks_no_rule_with_two_callers() {
    let r = start(&[(SALES, r#"{ answer = "busy" }"#), (SUPPORT, r#"{ answer = "human" }"#)]);
    call_in(&r, CALLER, 5, "I need sales");
    call_in(&r, CALLER_2, 6, "I need sales");
    settle(&r, 300).await;
    assert_clean(&r, &[]);
}

#[tokio::test(start_paused = true)]
async fn the_reference_breaks_no_rule_with_two_callers_bridged() {
    let r = start(&[(SALES, r#"{ answer = "human", after_s = 3 }"#)]);
    call_in(&r, CALLER, 5, "I need sales");
    call_in(&r, CALLER_2, 6, "I need sales");
    settle(&r, 300).await;
    assert_clean(&r, &[]);
}

// ---------------------------------------------------------------------------------------------------------
// Each MUST rule bites: a broken orchestrator breaks it.
// ---------------------------------------------------------------------------------------------------------

/// A run of the naive orchestrator with `flaw`: its world, callers who ask for something, and what broke.
struct Broken {
    sim: SharedSim,
    machines: Vec<&'static str>,
}

impl Broken {
    fn start(phones: &[(&str, &str)], faults: &[&str], flaw: Flaw) -> Broken {
        Broken { sim: broken::start(world_with_faults(phones, faults), flaw), machines: Vec::new() }
    }

    fn machines(mut self, machines: &[&'static str]) -> Broken {
        self.machines = machines.to_vec();
        self
    }

    /// A caller from `from` who asks for `request` at simulated second `at`.
    fn call_in(&self, from: &str, at: u64, request: &'static str) -> CallSid {
        let leg = self.sim.with(|w| w.place_inbound_call(from, NUMBER)).expect("inbound call");
        at_second(&self.sim, at, move |w| w.caller_says(leg, request).expect("caller speaks"));
        leg
    }

    async fn violations(&self, secs: u64) -> Vec<Violation> {
        broken::settle(&self.sim, secs).await;
        rules::evaluate(self.sim.world().journal(), &context(&self.machines))
    }

    fn timeline(&self) -> String {
        self.sim.world().journal().timeline()
    }

    /// Asserts the MUST rules broken are exactly `expected`.
    fn assert_broke(&self, violations: &[Violation], expected: &[&str]) {
        let broke: BTreeSet<&str> = must(violations);
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(broke, expected, "{}\n\n{}", describe(violations), self.timeline());
    }
}

/// The MUST rules among `violations`.
fn must(violations: &[Violation]) -> BTreeSet<&'static str> {
    violations
        .iter()
        .filter(|v| rules::rule(v.rule).is_some_and(|r| r.level == Level::Must))
        .map(|v| v.rule)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_naive_orchestrator_breaks_no_must_rule_when_a_person_answers() {
    let run = Broken::start(&[(SALES, r#"{ answer = "human", after_s = 4 }"#)], &[], Flaw::None);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &[]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_left_on_hold_after_a_busy_specialist_breaks_return_on_failure() {
    let run = Broken::start(&[(SALES, r#"{ answer = "busy" }"#)], &[], Flaw::None);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["return-on-failure"]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_bridged_with_voicemail_breaks_no_voicemail_bridge() {
    let run =
        Broken::start(&[(SALES, r#"{ answer = "machine", after_s = 3, greeting_s = 8 }"#)], &[], Flaw::None)
            .machines(&[SALES]);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    // With no way back, the caller is not returned either.
    run.assert_broke(&violations, &["no-voicemail-bridge", "return-on-failure"]);
}

#[tokio::test(start_paused = true)]
async fn a_specialist_left_ringing_for_a_caller_who_left_breaks_no_orphans() {
    let run = Broken::start(&[(SALES, r#"{ answer = "no-answer" }"#)], &[], Flaw::None);
    let caller = run.call_in(CALLER, 5, "I need sales");
    at_second(&run.sim, 15, move |w| w.remote_hangup(caller));
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["no-orphans"]);
}

#[tokio::test(start_paused = true)]
async fn dialing_a_number_outside_the_allowlist_breaks_destination_allowlist() {
    let run = Broken::start(&[], &[], Flaw::DialsAnyNumber);
    run.call_in(CALLER, 5, "put me through to nowhere");
    let violations = run.violations(120).await;
    run.assert_broke(&violations, &["destination-allowlist"]);
}

#[tokio::test(start_paused = true)]
async fn tool_calls_answered_without_results_break_tool_response() {
    let run = Broken::start(&[(SALES, r#"{ answer = "human", after_s = 4 }"#)], &[], Flaw::SilentTools);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["tool-response"]);
}

#[tokio::test(start_paused = true)]
async fn a_conference_ended_under_the_caller_breaks_caller_never_dropped() {
    let run = Broken::start(
        &[(SALES, r#"{ answer = "hang-up", after_s = 3, talk_s = 1 }"#)],
        &[],
        Flaw::SpecialistEndsConference,
    );
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["caller-never-dropped"]);
}

#[tokio::test(start_paused = true)]
async fn hanging_up_the_caller_breaks_caller_never_dropped() {
    let run = Broken::start(&[(SALES, r#"{ answer = "human" }"#)], &[], Flaw::HangsUpCaller);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["caller-never-dropped"]);
}

#[tokio::test(start_paused = true)]
async fn a_specialist_sent_to_another_conference_breaks_bridge_on_answer() {
    let run = Broken::start(&[(SALES, r#"{ answer = "human", after_s = 4 }"#)], &[], Flaw::WrongRoom);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["bridge-on-answer"]);
}

#[tokio::test(start_paused = true)]
async fn two_callers_in_one_conference_break_isolation() {
    let run = Broken::start(&[(SALES, r#"{ answer = "human", after_s = 4 }"#)], &[], Flaw::SharedRoom);
    run.call_in(CALLER, 5, "I need sales");
    run.call_in(CALLER_2, 6, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["isolation"]);
}

#[tokio::test(start_paused = true)]
async fn a_wait_url_answered_with_broken_twiml_breaks_valid_twiml() {
    let run = Broken::start(&[(SALES, r#"{ answer = "human", after_s = 4 }"#)], &[], Flaw::BadHoldTwiml);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["valid-twiml"]);
    assert!(
        violations.iter().any(|v| v.rule == "hold-audio"),
        "the caller heard silence too:\n{}",
        describe(&violations)
    );
}

#[tokio::test(start_paused = true)]
async fn accepting_a_forged_webhook_breaks_authentic_webhooks() {
    let run = Broken::start(
        &[(SALES, r#"{ answer = "human", after_s = 4 }"#)],
        &[r#"{ action = "forge", path = "/twilio/voice" }"#],
        Flaw::None,
    );
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["authentic-webhooks"]);
}

#[tokio::test(start_paused = true)]
async fn acting_on_a_redelivered_tool_call_breaks_idempotent_webhooks() {
    let run = Broken::start(
        &[(SALES, r#"{ answer = "human", after_s = 4 }"#)],
        &[r#"{ action = "duplicate", message = "tool-calls" }"#],
        Flaw::None,
    );
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &["idempotent-webhooks"]);
}

// ---------------------------------------------------------------------------------------------------------
// The SHOULD rules bite too.
// ---------------------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_caller_returned_without_the_conversation_breaks_context_carryover_only() {
    let run = Broken::start(&[(SALES, r#"{ answer = "busy" }"#)], &[], Flaw::ReturnsWithoutContext);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    run.assert_broke(&violations, &[]);
    let rules: Vec<&str> = violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["context-carryover"], "{}", describe(&violations));
}

#[tokio::test(start_paused = true)]
async fn putting_a_returned_caller_back_on_hold_for_a_late_callback_breaks_order_tolerant() {
    let late = r#"{ path = "/twilio/status", call_status = "ringing", action = "delay", delay_s = 8 }"#;
    let run = Broken::start(
        &[(SALES, r#"{ answer = "reject", after_s = 2 }"#)],
        &[late],
        Flaw::RegressesOnLateCallbacks,
    );
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    assert!(
        violations.iter().any(|v| v.rule == "order-tolerant"),
        "{}\n\n{}",
        describe(&violations),
        run.timeline()
    );
    // Taking the caller away from the assistant it came back to breaks the return too.
    run.assert_broke(&violations, &["return-on-failure"]);
}

#[tokio::test(start_paused = true)]
async fn the_report_for_a_failing_orchestrator_shows_the_rule_the_lines_and_the_sequence() {
    let run = Broken::start(&[(SALES, r#"{ answer = "busy" }"#)], &[], Flaw::None);
    run.call_in(CALLER, 5, "I need sales");
    let violations = run.violations(300).await;
    let journal = run.sim.world().journal().clone();
    let verdict = ringback::report::Verdict {
        name: "naive-orchestrator-busy".into(),
        description: "The naive orchestrator, and a busy specialist.".into(),
        seed: 7,
        rules: rules::RULES.iter().map(|r| r.id).collect(),
        outcome: Ok(ringback::run::Run { journal, callers: Vec::new(), violations }),
    };
    assert!(!verdict.passed());
    assert!(
        verdict.line().starts_with("FAIL  naive-orchestrator-busy  (seed 7): return-on-failure at "),
        "{}",
        verdict.line()
    );
    let report = ringback::report::markdown(std::slice::from_ref(&verdict), "naive");
    for needle in [
        "| `naive-orchestrator-busy` | 7 | ❌ fail | return-on-failure |",
        "```mermaid",
        "sequenceDiagram",
        "❌ return-on-failure at",
        "T->>S:",
        "busy",
    ] {
        assert!(report.contains(needle), "{needle} missing from:\n{report}");
    }
    let junit = ringback::report::junit(std::slice::from_ref(&verdict));
    assert!(
        junit.contains(r#"<testcase name="return-on-failure">"#) && junit.contains("<failure"),
        "{junit}"
    );
    // Kept for people to look at: target/tmp/naive-orchestrator-busy.md
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("naive-orchestrator-busy.md"),
        &report,
    );
}
