//! The scenario format and the built-in library.
//!
//! A scenario file (TOML) describes a world from the caller's side: the specialist departments and how
//! each of their phones answers, the callers (when they dial, what they ask the assistant for, when they
//! hang up), the faults the run injects, and what should come of it. [`Scenario::plan`] expands it into
//! a [`Plan`]: concrete numbers for every caller and specialist, the world the fakes run, and what the
//! judge needs to know. Start at [`Scenario`]; [`library`] holds the built-in scenarios.

use std::fmt;
use std::path::{Path, PathBuf};

use ringback_sim::faults::{FaultAction, WebhookFault};
use ringback_sim::phone::Behaviour;
use ringback_sim::watch::CallMoment;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub mod generate;
pub mod library;
pub mod plan;

pub use plan::{CallerPlan, Plan, PlannedHangUp, Request};

/// One scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario checks, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The run's seed (default: the `--seed` of the run).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How long the run may last, in simulated seconds.
    #[serde(default = "default_duration_s")]
    pub duration_s: f64,
    /// What should happen to every caller (each caller group may say otherwise).
    pub expect: Expect,
    /// The specialist departments the orchestrator may transfer to.
    #[serde(default)]
    pub specialists: Vec<Department>,
    /// The callers.
    pub callers: Vec<CallerGroup>,
    /// Faults injected into the webhooks the fakes send the orchestrator.
    #[serde(default)]
    pub faults: Vec<WebhookFault>,
    /// Stop the orchestrator at `at_s` and start it again `down_s` later, over the same state.
    #[serde(default)]
    pub restart: Option<Restart>,
    /// The rule ids that apply (default: all).
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// How the reference orchestrator is configured for this scenario.
    #[serde(default)]
    pub orchestrator: OrchestratorOptions,
    /// Makes this a `vapi-native` scenario: no orchestrator, the fake Vapi transfers by itself with this
    /// `transferCall` tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<Native>,
}

/// A `vapi-native` scenario's transfer: the assistant's `transferCall` tool, as in Vapi's docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Native {
    /// The tool: a table in the scenario, or the path of a JSON file (relative to the scenario file).
    pub tool: Tool,
}

/// Where a `transferCall` tool is written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tool {
    /// A JSON file, read when the scenario is loaded.
    File(PathBuf),
    /// The tool itself.
    Inline(serde_json::Value),
}

/// The most callers a scenario has, all groups together. Every caller is a phone, a Twilio call and a
/// Vapi call in one world, and gets its own copy of every department.
pub const MAX_CALLERS: u32 = 1000;
/// The most specialist phones a scenario's plan has, copies for each caller included.
pub const MAX_PHONES: u64 = 10_000;
/// The most things one caller does (utterances, key presses, transfer destinations asked for). A script
/// is a handful of steps; the bound keeps a group of a thousand callers from multiplying a long list a
/// thousandfold.
pub const MAX_ACTIONS_PER_CALLER: usize = 100;

fn default_duration_s() -> f64 {
    300.0
}

/// What should come of a caller's call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Talking with a specialist at the end.
    Bridged,
    /// Back with an assistant after a failed transfer.
    Returned,
    /// The transfer is refused: no specialist is dialed.
    Refused,
    /// The caller hangs up; nothing is left behind.
    CallerLeft,
    /// Twilio ends the caller's call with its application error: a fault left it no usable TwiML (an
    /// answer too slow, a 500, unparsable TwiML) and there was no fallback. The fault's doing, not the
    /// target's; nothing is left behind.
    Dropped,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Bridged => "bridged",
            Expect::Returned => "returned",
            Expect::Refused => "refused",
            Expect::CallerLeft => "caller-left",
            Expect::Dropped => "dropped",
        }
    }
}

/// A department and its phones, dialed in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub name: String,
    /// How each of the department's phones answers.
    pub phones: Vec<Behaviour>,
    /// The phones' numbers, one per phone (default: assigned, and copied for each caller when there are
    /// several). Given numbers are shared by every caller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<String>,
}

/// One caller, or `count` callers alike (each with their own numbers and their own copy of every
/// department, so that concurrent transfers can be told apart).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerGroup {
    #[serde(default = "one")]
    pub count: u32,
    /// When the first caller dials, in simulated seconds.
    #[serde(default)]
    pub at_s: f64,
    /// Seconds between one caller of the group dialing and the next.
    #[serde(default)]
    pub stagger_s: f64,
    /// What the caller asks the assistant for, and when (seconds after dialing).
    #[serde(default)]
    pub asks: Vec<Ask>,
    /// What else the caller says, and when (seconds after dialing); the assistant answers in kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub says: Vec<Say>,
    /// Keys the caller presses, and when (seconds after dialing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presses: Vec<Press>,
    /// When the caller hangs up, if they do: at a time, or on a moment of the call.
    #[serde(default)]
    pub hang_up: Option<HangUp>,
    /// Overrides the scenario's expectation for this group.
    #[serde(default)]
    pub expect: Option<Expect>,
}

fn one() -> u32 {
    1
}

/// Something the caller says that is not a transfer request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Say {
    /// Seconds after the caller dials.
    pub at_s: f64,
    pub text: String,
}

/// Keys the caller presses (DTMF), one after another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Press {
    /// Seconds after the caller dials.
    pub at_s: f64,
    /// `0`–`9`, `*` and `#`.
    pub digits: String,
}

/// A transfer request: the caller asks, and the assistant calls the transfer tool for each destination
/// listed, all in one burst.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// Seconds after the caller dials.
    #[serde(default = "default_ask_s")]
    pub at_s: f64,
    /// Departments (by name) or numbers, one tool call each.
    pub transfer_to: Vec<String>,
}

fn default_ask_s() -> f64 {
    5.0
}

/// When a caller hangs up: `{ at_s = 15 }`, or `{ on = "hold", after_s = 2 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HangUpFields", into = "HangUpFields")]
pub enum HangUp {
    /// Seconds after dialing.
    At { at_s: f64 },
    /// `after_s` seconds after the call first reaches `on` (the caller is on hold, one of their
    /// specialists rings, they are bridged, they are back with an assistant); never if it does not.
    On { on: CallMoment, after_s: f64 },
}

/// [`HangUp`] as a file writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HangUpFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on: Option<CallMoment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_s: Option<f64>,
}

impl TryFrom<HangUpFields> for HangUp {
    type Error = String;

    fn try_from(f: HangUpFields) -> Result<HangUp, String> {
        let non_negative = |name: &str, s: f64| {
            if s.is_finite() && s >= 0.0 {
                Ok(s)
            } else {
                Err(format!("`hang_up.{name}` is {s}; expected seconds, 0 or more"))
            }
        };
        match (f.at_s, f.on, f.after_s) {
            (Some(at_s), None, None) => Ok(HangUp::At { at_s: non_negative("at_s", at_s)? }),
            (None, Some(on), after_s) => {
                Ok(HangUp::On { on, after_s: non_negative("after_s", after_s.unwrap_or(0.0))? })
            }
            (Some(_), Some(_), _) => {
                Err("`hang_up` has both `at_s` and `on`; give a time or a moment, not both".into())
            }
            (Some(_), None, Some(_)) => {
                Err("`hang_up.after_s` counts from a moment; give `on` with it, or use `at_s` alone".into())
            }
            (None, None, _) => {
                Err("`hang_up` needs `at_s` (seconds after dialing) or `on` (one of \"hold\", \
                                    \"specialist-ringing\", \"bridged\", \"returned\")"
                    .into())
            }
        }
    }
}

impl From<HangUp> for HangUpFields {
    fn from(h: HangUp) -> HangUpFields {
        match h {
            HangUp::At { at_s } => HangUpFields { at_s: Some(at_s), on: None, after_s: None },
            HangUp::On { on, after_s } => {
                HangUpFields { at_s: None, on: Some(on), after_s: (after_s != 0.0).then_some(after_s) }
            }
        }
    }
}

/// Stop the orchestrator, and start it again `down_s` later: at a time, or `after_s` after the first
/// caller's call reaches a moment (`on = "hold"`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// Seconds into the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_s: Option<f64>,
    /// A moment of the first caller's call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<CallMoment>,
    /// Seconds after `on`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub after_s: f64,
    #[serde(default)]
    pub down_s: f64,
}

impl Restart {
    /// A restart at `at_s`, down for `down_s`.
    pub fn at(at_s: f64, down_s: f64) -> Restart {
        Restart { at_s: Some(at_s), on: None, after_s: 0.0, down_s }
    }
}

fn is_zero(s: &f64) -> bool {
    *s == 0.0
}

/// The reference orchestrator's settings for the scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrchestratorOptions {
    pub ring_timeout_s: u32,
    /// `Enable` or `DetectMessageEnd`.
    pub machine_detection: String,
}

impl Default for OrchestratorOptions {
    fn default() -> Self {
        OrchestratorOptions { ring_timeout_s: 30, machine_detection: "Enable".into() }
    }
}

/// A file that cannot be used (a scenario, a tool, a target file): where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not at one place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A scenario file that cannot be used.
pub type ScenarioError = FileError;

impl FileError {
    /// A problem with `file` as a whole (it cannot be read, or what it says does not hold together).
    pub fn whole(file: &Path, message: impl Into<String>) -> FileError {
        FileError { file: file.to_owned(), line: 0, column: 0, message: message.into() }
    }

    /// A TOML error in `text` (the contents of `file`), at the line and column it points to.
    pub fn toml(text: &str, file: &Path, e: &toml::de::Error) -> FileError {
        let (line, column) = e.span().map_or((0, 0), |span| line_column(text, span.start));
        FileError { file: file.to_owned(), line, column, message: e.message().trim().to_owned() }
    }

    /// A problem the parser could not see, found by checking what `text` (the contents of `file`) says.
    /// A message that opens by naming a key in backticks (`` `callers[1].count` is 0; … ``) is placed at
    /// that key's line and column; any other is about the file as a whole.
    pub fn checked(text: &str, file: &Path, message: impl Into<String>) -> FileError {
        let message = message.into();
        let key = message.strip_prefix('`').and_then(|rest| rest.split_once('`')).map(|(key, _)| key);
        match key.and_then(|key| locate(text, key)) {
            Some(at) => {
                let (line, column) = line_column(text, at);
                FileError { file: file.to_owned(), line, column, message }
            }
            None => FileError::whole(file, message),
        }
    }
}

/// Where `key` (a path such as `callers[1].asks[0].at_s` or `specialists.sales`) is written in the TOML
/// document `text`, as a byte offset: the key itself, or the deepest part of the path found. `None` when
/// `text` is not TOML or the path's first key is not in it.
pub fn locate(text: &str, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let mut table = Some(document.get_ref());
    let mut found = None;
    'path: for part in key.split('.') {
        let (name, indices) = match part.find('[') {
            Some(open) => (&part[..open], &part[open..]),
            None => (part, ""),
        };
        let Some((k, v)) = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref() == name)) else { break };
        found = Some(k.span().start);
        let mut value = Some(v.get_ref());
        for index in indices.split(['[', ']']).filter(|i| !i.is_empty()) {
            let item = index.parse::<usize>().ok().and_then(|i| value?.get(i));
            let Some(item) = item else { break 'path };
            // An array of tables' items may have no span of their own; keep the key's then.
            if !item.span().is_empty() {
                found = Some(item.span().start);
            }
            value = Some(item.get_ref());
        }
        table = value.and_then(DeValue::as_table);
    }
    found
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for FileError {}

impl Scenario {
    /// Parses and checks a scenario; `file` names it in errors.
    /// A `tool` given as a file is read relative to `file`'s folder.
    pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| FileError::toml(text, file, &e))?;
        if let Some(native) = &mut scenario.native
            && let Tool::File(path) = &native.tool
        {
            native.tool =
                Tool::Inline(read_tool(&file.parent().unwrap_or(Path::new("")).join(path), text, file)?);
        }
        scenario.check().map_err(|message| FileError::checked(text, file, message))?;
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = read_file(path).map_err(|e| FileError::whole(path, format!("cannot read it: {e}")))?;
        Scenario::parse(&text, path)
    }

    /// The `transferCall` tool of a `vapi-native` scenario (read from its file when the scenario was
    /// parsed).
    pub fn native_tool(&self) -> Option<&serde_json::Value> {
        match &self.native.as_ref()?.tool {
            Tool::Inline(tool) => Some(tool),
            Tool::File(_) => None,
        }
    }

    /// What the parser cannot see: names that must refer to something.
    fn check(&self) -> Result<(), String> {
        if self.callers.is_empty() {
            return Err("a scenario needs at least one `[[callers]]`".into());
        }
        if !(self.duration_s > 0.0 && self.duration_s <= 24.0 * 3600.0) {
            return Err(format!("`duration_s` is {}; expected between 0 and 86400 seconds", self.duration_s));
        }
        for (i, d) in self.specialists.iter().enumerate() {
            if d.phones.is_empty() {
                return Err(format!("`specialists[{i}]` ({}) has no phones; give it at least one", d.name));
            }
            if d.name.is_empty() || !d.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`specialists[{i}].name` {:?} must be letters, digits or `_` (it becomes a department name)",
                    d.name
                ));
            }
            if self.specialists[..i].iter().any(|o| o.name == d.name) {
                return Err(format!("department {:?} is listed twice", d.name));
            }
            if !d.numbers.is_empty() && d.numbers.len() != d.phones.len() {
                return Err(format!(
                    "`specialists[{i}]` ({}) has {} phones and {} numbers; give one number per phone, or none",
                    d.name,
                    d.phones.len(),
                    d.numbers.len()
                ));
            }
            for (j, number) in d.numbers.iter().enumerate() {
                if !is_e164(number) {
                    return Err(format!(
                        "`specialists[{i}].numbers[{j}]` is {number:?}; expected a number in E.164 form, \
                         `+` then up to 15 digits"
                    ));
                }
                let elsewhere = self.specialists[..i].iter().flat_map(|o| &o.numbers).chain(&d.numbers[..j]);
                if elsewhere.into_iter().any(|o| o == number) {
                    return Err(format!("specialist number {number} is listed twice"));
                }
            }
        }
        if let Some(native) = &self.native {
            check_native(&native.tool)?;
            if self.restart.is_some() {
                return Err("`restart` restarts an orchestrator; a `[native]` scenario has none".into());
            }
            if !self.faults.is_empty() {
                return Err(
                    "`faults` touch the webhooks an orchestrator is sent; a `[native]` scenario has \
                     no orchestrator"
                        .into(),
                );
            }
        }
        for (i, group) in self.callers.iter().enumerate() {
            if group.count == 0 || group.count > MAX_CALLERS {
                return Err(format!("`callers[{i}].count` is {}; expected 1 to {MAX_CALLERS}", group.count));
            }
            for (name, s) in [("at_s", group.at_s), ("stagger_s", group.stagger_s)] {
                if !is_time(s) {
                    return Err(format!("`callers[{i}].{name}` is {s}; expected seconds, 0 or more"));
                }
            }
            let actions = group.says.len()
                + group.presses.len()
                + group.asks.iter().map(|a| a.transfer_to.len()).sum::<usize>();
            if actions > MAX_ACTIONS_PER_CALLER {
                return Err(format!(
                    "`callers[{i}]` says, presses and asks for transfers {actions} times; expected at most \
                     {MAX_ACTIONS_PER_CALLER}"
                ));
            }
            for (j, say) in group.says.iter().enumerate() {
                if say.text.trim().is_empty() || !is_time(say.at_s) {
                    return Err(format!(
                        "`callers[{i}].says[{j}]` needs some `text` and an `at_s` of 0 or more seconds"
                    ));
                }
            }
            for (j, press) in group.presses.iter().enumerate() {
                let keys = |c: char| c.is_ascii_digit() || c == '*' || c == '#';
                if press.digits.is_empty() || !press.digits.chars().all(keys) || !is_time(press.at_s) {
                    return Err(format!(
                        "`callers[{i}].presses[{j}]` is {:?} at {} s; expected keys `0`-`9`, `*`, `#` at 0 \
                         or more seconds",
                        press.digits, press.at_s
                    ));
                }
            }
            for (j, ask) in group.asks.iter().enumerate() {
                if !is_time(ask.at_s) {
                    return Err(format!(
                        "`callers[{i}].asks[{j}].at_s` is {}; expected seconds, 0 or more",
                        ask.at_s
                    ));
                }
                if ask.transfer_to.is_empty() {
                    return Err(format!("`callers[{i}].asks[{j}].transfer_to` is empty"));
                }
                for to in &ask.transfer_to {
                    let known = self.specialists.iter().any(|d| &d.name == to) || to.starts_with('+');
                    if !known {
                        return Err(format!(
                            "`callers[{i}].asks[{j}]` asks for {to:?}, which is neither a department of \
                             `[[specialists]]` nor a number"
                        ));
                    }
                }
            }
        }
        // `count` callers each get their own copy of every department (see `Scenario::plan`).
        let callers: u64 = self.callers.iter().map(|g| u64::from(g.count)).sum();
        if callers > u64::from(MAX_CALLERS) {
            return Err(format!(
                "`callers` adds up to {callers} callers (the sum of their `count`s); expected at most {MAX_CALLERS}"
            ));
        }
        let phones = self.specialists.iter().map(|d| d.phones.len() as u64).sum::<u64>();
        let copies = if self.callers_get_own_departments() { callers } else { 1 };
        if phones * copies > MAX_PHONES {
            return Err(format!(
                "`specialists` has {phones} phones, copied for each of {copies} callers: {} in all; expected at \
                 most {MAX_PHONES}",
                phones * copies
            ));
        }
        for (i, d) in self.specialists.iter().enumerate() {
            for (j, phone) in d.phones.iter().enumerate() {
                if let Some((name, s)) = phone_times(phone).into_iter().find(|(_, s)| !is_time(*s)) {
                    return Err(format!(
                        "`specialists[{i}].phones[{j}].{name}` is {s}; expected seconds, 0 or more"
                    ));
                }
            }
        }
        for (i, fault) in self.faults.iter().enumerate() {
            if fault.nth == Some(0) {
                return Err(format!("`faults[{i}].nth` is 0; expected 1 or more (the first match is 1)"));
            }
            if let FaultAction::Delay { delay_s } | FaultAction::SlowAnswer { delay_s } = fault.action
                && !is_time(delay_s)
            {
                return Err(format!("`faults[{i}].delay_s` is {delay_s}; expected seconds, 0 or more"));
            }
        }
        let o = &self.orchestrator;
        if !(5..=600).contains(&o.ring_timeout_s) {
            return Err(format!(
                "`orchestrator.ring_timeout_s` is {}; expected 5 to 600 seconds (the reference orchestrator's \
                 RING_TIMEOUT_S; Twilio's `Timeout` is at most 600)",
                o.ring_timeout_s
            ));
        }
        if !["Enable", "DetectMessageEnd"].contains(&o.machine_detection.as_str()) {
            return Err(format!(
                "`orchestrator.machine_detection` is {:?}; expected \"Enable\" or \"DetectMessageEnd\"",
                o.machine_detection
            ));
        }
        if let Some(r) = &self.restart {
            match (r.at_s, r.on) {
                (Some(_), Some(_)) => return Err("`restart` has both `at_s` and `on`; give one".into()),
                (None, None) => {
                    return Err(
                        "`restart` needs `at_s` (seconds into the run) or `on` (a moment of the first \
                                caller's call: hold, specialist-ringing, bridged, returned)"
                            .into(),
                    );
                }
                (Some(_), None) if r.after_s != 0.0 => {
                    return Err("`restart.after_s` counts from `on`; with `at_s`, leave it out".into());
                }
                _ => {}
            }
            let times = [r.at_s.unwrap_or(0.0), r.after_s, r.down_s];
            if !times.into_iter().all(is_time) {
                return Err(format!("`restart` times must be 0 or more seconds; got {times:?}"));
            }
        }
        if let Some(rules) = &self.rules
            && rules.is_empty()
        {
            return Err("`rules` is empty; leave it out to apply every rule".into());
        }
        Ok(())
    }

    /// A JSON Schema of the format, for editors.
    pub fn json_schema() -> serde_json::Value {
        let behaviour = json!({
            "type": "object", "required": ["answer"],
            "properties": {
                "answer": {"enum": ["human", "machine", "fax", "busy", "no-answer", "fail", "reject", "hang-up"]},
                "after_s": {"type": "number", "minimum": 0}, "greeting_s": {"type": "number", "minimum": 0},
                "beep": {"type": "boolean"}, "talk_s": {"type": "number", "minimum": 0}
            }
        });
        let fault = json!({
            "type": "object", "required": ["action"],
            "properties": {
                "action": {"enum": ["duplicate", "delay", "drop", "forge", "slow-answer", "server-error", "garbage-twiml"]},
                "from": {"enum": ["twilio", "vapi"]}, "path": {"type": "string"},
                "call_status": {"type": "string"}, "message": {"type": "string"},
                "nth": {"type": "integer", "minimum": 1}, "delay_s": {"type": "number", "minimum": 0}
            }
        });
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "ringback scenario",
            "type": "object",
            "additionalProperties": false,
            "required": ["expect", "callers"],
            "properties": {
                "description": {"type": "string"},
                "seed": {"type": "integer", "minimum": 0},
                "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
                "expect": {"enum": ["bridged", "returned", "refused", "caller-left", "dropped"]},
                "specialists": {"type": "array", "items": {
                    "type": "object", "additionalProperties": false, "required": ["name", "phones"],
                    "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
                                   "phones": {"type": "array", "minItems": 1, "items": behaviour},
                                   "numbers": {"type": "array", "items": {"type": "string", "pattern": "^\\+[0-9]{1,15}$"}}}}},
                "callers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "count": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "at_s": {"type": "number", "minimum": 0}, "stagger_s": {"type": "number", "minimum": 0},
                        "asks": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                            "required": ["transfer_to"],
                            "properties": {"at_s": {"type": "number", "minimum": 0},
                                           "transfer_to": {"type": "array", "minItems": 1, "items": {"type": "string"}}}}},
                        "says": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                            "required": ["at_s", "text"],
                            "properties": {"at_s": {"type": "number", "minimum": 0}, "text": {"type": "string", "minLength": 1}}}},
                        "presses": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                            "required": ["at_s", "digits"],
                            "properties": {"at_s": {"type": "number", "minimum": 0},
                                           "digits": {"type": "string", "pattern": "^[0-9*#]+$"}}}},
                        "hang_up": {"type": "object", "additionalProperties": false,
                                    "oneOf": [{"required": ["at_s"], "not": {"anyOf": [{"required": ["on"]}, {"required": ["after_s"]}]}},
                                              {"required": ["on"], "not": {"required": ["at_s"]}}],
                                    "properties": {"at_s": {"type": "number", "minimum": 0},
                                                   "on": {"enum": ["hold", "specialist-ringing", "bridged", "returned"]},
                                                   "after_s": {"type": "number", "minimum": 0}}},
                        "expect": {"enum": ["bridged", "returned", "refused", "caller-left", "dropped"]}
                    }}},
                "faults": {"type": "array", "items": fault},
                "restart": {"type": "object", "additionalProperties": false,
                            "oneOf": [{"required": ["at_s"]}, {"required": ["on"]}],
                            "properties": {"at_s": {"type": "number", "minimum": 0},
                                           "on": {"enum": ["hold", "specialist-ringing", "bridged", "returned"]},
                                           "after_s": {"type": "number", "minimum": 0},
                                           "down_s": {"type": "number", "minimum": 0}}},
                "rules": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "native": {"type": "object", "additionalProperties": false, "required": ["tool"], "properties": {
                    "tool": {"oneOf": [
                        {"type": "string", "description": "a JSON file holding the transferCall tool, relative to the scenario"},
                        {"type": "object", "required": ["type", "destinations"],
                         "properties": {"type": {"const": "transferCall"}, "destinations": {"type": "array", "minItems": 1}}}]}}},
                "orchestrator": {"type": "object", "additionalProperties": false, "properties": {
                    "ring_timeout_s": {"type": "integer", "minimum": 5, "maximum": 600},
                    "machine_detection": {"enum": ["Enable", "DetectMessageEnd"]}}}
            }
        })
    }
}

/// Reads a `transferCall` tool from a JSON file. A file that cannot be read is the scenario's problem, placed
/// at its `native.tool` key (`text` and `file` are the scenario's); JSON that does not parse is the tool
/// file's, at its own line and column.
fn read_tool(path: &Path, text: &str, file: &Path) -> Result<serde_json::Value, ScenarioError> {
    let json = read_file(path).map_err(|e| {
        let message = format!("`native.tool` names the file {:?}, which cannot be read: {e}", path.display());
        FileError::checked(text, file, message)
    })?;
    serde_json::from_str(&json).map_err(|e| ScenarioError {
        file: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: format!("not a JSON transferCall tool: {e}"),
    })
}

/// The largest file ringback reads as a scenario, a tool, a target or a world file. Real ones are a few
/// kilobytes; the bound keeps a path such as `/dev/zero` from filling memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {MAX_FILE_BYTES} bytes; expected a scenario, tool, target or world file of a few kilobytes"
        )));
    }
    Ok(text)
}

/// What the fake Vapi needs of a `transferCall` tool to transfer by itself.
fn check_native(tool: &Tool) -> Result<(), String> {
    let Tool::Inline(tool) = tool else {
        return Err("`native.tool` names a file that was not read".into());
    };
    let Some(object) = tool.as_object() else {
        return Err(format!("`native.tool` is {tool}; expected a transferCall tool object"));
    };
    if object.get("type").and_then(|t| t.as_str()) != Some("transferCall") {
        return Err(format!(
            "`native.tool.type` is {}; expected \"transferCall\"",
            object.get("type").map_or_else(|| "missing".to_owned(), ToString::to_string)
        ));
    }
    let destinations = object.get("destinations").and_then(|d| d.as_array());
    if destinations.is_none_or(Vec::is_empty) {
        return Err("`native.tool.destinations` is missing or empty; without a server to ask, the fake \
                    Vapi can only transfer to a listed destination"
            .into());
    }
    Ok(())
}

/// A phone behaviour's times, by name.
fn phone_times(phone: &Behaviour) -> Vec<(&'static str, f64)> {
    match *phone {
        Behaviour::Human { after_s } | Behaviour::Fax { after_s } | Behaviour::Reject { after_s } => {
            vec![("after_s", after_s)]
        }
        Behaviour::Machine { after_s, greeting_s, .. } => {
            vec![("after_s", after_s), ("greeting_s", greeting_s)]
        }
        Behaviour::HangUp { after_s, talk_s } => vec![("after_s", after_s), ("talk_s", talk_s)],
        Behaviour::Busy | Behaviour::NoAnswer | Behaviour::Fail => Vec::new(),
    }
}

/// Whether `s` is a time a script can act at: a finite number of seconds, 0 or more.
fn is_time(s: f64) -> bool {
    s.is_finite() && s >= 0.0
}

/// Whether `number` looks like an E.164 phone number.
pub fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("busy.toml"))
    }

    #[test]
    fn a_minimal_scenario_parses_with_defaults() {
        let s = parse(
            r#"
            expect = "returned"
            [[specialists]]
            name = "sales"
            phones = [{ answer = "busy" }]
            [[callers]]
            asks = [{ transfer_to = ["sales"] }]
            "#,
        )
        .expect("valid");
        assert_eq!(s.duration_s, 300.0);
        assert_eq!(s.callers[0].count, 1);
        assert_eq!(s.callers[0].asks[0].at_s, 5.0);
        assert_eq!(s.specialists[0].phones[0], Behaviour::Busy);
    }

    #[test]
    fn a_typo_is_reported_with_file_line_and_column() {
        let err = parse("expect = \"returned\"\n[[callers]]\nasks = [{ transfer_too = [\"sales\"] }]\n")
            .expect_err("unknown field");
        assert_eq!((err.line, err.file.as_path()), (3, Path::new("busy.toml")));
        assert!(err.to_string().starts_with("busy.toml:3:"), "{err}");
        assert!(err.message.contains("transfer_too"), "{err}");
    }

    const NATIVE: &str = r#"
        expect = "returned"
        [[specialists]]
        name = "sales"
        numbers = ["+14155550100"]
        phones = [{ answer = "busy" }]
        [[callers]]
        asks = [{ transfer_to = ["sales"] }]
    "#;

    #[test]
    fn a_native_tool_file_is_read_next_to_the_scenario() {
        let dir = std::env::temp_dir().join(format!("ringback-native-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let tool =
            r#"{"type": "transferCall", "destinations": [{"type": "number", "number": "+14155550100"}]}"#;
        std::fs::write(dir.join("tool.json"), tool).expect("tool written");
        let s = Scenario::parse(&format!("{NATIVE}[native]\ntool = \"tool.json\"\n"), &dir.join("s.toml"))
            .expect("valid");
        assert_eq!(
            s.native_tool().map(|t| t["destinations"][0]["number"].clone()),
            Some("+14155550100".into())
        );
        let plan = s.plan(1);
        assert_eq!(plan.phones[0].0, "+14155550100", "the department's given number is the phone's");
        assert_eq!(plan.allowlist(), ["+14155550100"]);

        std::fs::write(dir.join("tool.json"), "{\n  \"type\": \"transferCall\",\n  oops\n}")
            .expect("written");
        let err = Scenario::parse(&format!("{NATIVE}[native]\ntool = \"tool.json\"\n"), &dir.join("s.toml"))
            .expect_err("bad JSON");
        assert_eq!((err.file.clone(), err.line, err.column), (dir.join("tool.json"), 3, 3), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_native_tool_must_be_a_transfer_call_with_destinations_and_nothing_else_to_restart() {
        let tool = "[native]\ntool = { type = \"transferCall\", destinations = [{ number = \"+1\" }] }\n";
        let cases = [
            ("", "[native]\ntool = { type = \"function\" }\n", "expected \"transferCall\""),
            ("", "[native]\ntool = { type = \"transferCall\", destinations = [] }\n", "destinations"),
            ("restart = { at_s = 9 }\n", tool, "restart"),
            ("faults = [{ action = \"drop\" }]\n", tool, "faults"),
        ];
        for (before, after, expected) in cases {
            let err = parse(&format!("{before}{NATIVE}{after}")).expect_err(after);
            assert!(err.message.contains(expected), "{before}{after}: {err}");
        }
    }

    #[test]
    fn bad_keys_or_an_empty_utterance_are_named() {
        let keys = parse("expect = \"returned\"\n[[callers]]\npresses = [{ at_s = 2, digits = \"12a\" }]\n")
            .expect_err("a key that is not one");
        assert!(keys.message.contains("callers[0].presses[0]") && keys.message.contains("\"12a\""), "{keys}");
        let said = parse("expect = \"returned\"\n[[callers]]\nsays = [{ at_s = 2, text = \" \" }]\n")
            .expect_err("nothing said");
        assert!(said.message.contains("callers[0].says[0]"), "{said}");
        let plan = parse(
            "expect = \"returned\"\n[[callers]]\nat_s = 1\nsays = [{ at_s = 2, text = \"hi\" }]\npresses = [{ at_s = 3, digits = \"1#\" }]\n",
        )
        .expect("valid")
        .plan(1);
        assert_eq!(plan.callers[0].says, [(3.0, "hi".to_owned())]);
        assert_eq!(plan.callers[0].presses, [(4.0, "1#".to_owned())]);
    }

    #[test]
    fn a_restart_is_at_a_time_or_on_a_moment_never_both_nor_neither() {
        let text = |restart: &str| format!("expect = \"bridged\"\n[restart]\n{restart}\n[[callers]]\n");
        let on = parse(&text("on = \"hold\"\nafter_s = 2\ndown_s = 5")).expect("on hold");
        assert_eq!(on.restart.map(|r| (r.on, r.at_s)), Some((Some(CallMoment::Hold), None)));
        for (restart, expected) in [
            ("at_s = 3\non = \"hold\"", "both"),
            ("down_s = 3", "needs `at_s`"),
            ("at_s = 3\nafter_s = 1", "counts from `on`"),
            ("on = \"lunch\"", "lunch"),
        ] {
            let err = parse(&text(restart)).expect_err(restart);
            assert!(err.message.contains(expected), "{restart}: {err}");
        }
    }

    #[test]
    fn given_numbers_are_one_per_phone_in_e164() {
        let two = NATIVE.replace(
            "phones = [{ answer = \"busy\" }]",
            "phones = [{ answer = \"busy\" }, { answer = \"busy\" }]",
        );
        assert!(parse(&two).expect_err("two phones, one number").message.contains("one number per phone"));
        let local = NATIVE.replace("+14155550100", "4155550100");
        assert!(parse(&local).expect_err("not E.164").message.contains("E.164"));
    }

    #[test]
    fn a_bad_phone_behaviour_names_what_was_expected() {
        let err = parse(
            "expect = \"returned\"\n[[specialists]]\nname = \"sales\"\nphones = [{ answer = \"maybe\" }]\n[[callers]]\n",
        )
        .expect_err("unknown behaviour");
        assert_eq!(err.line, 4, "{err}");
        assert!(err.message.contains("maybe") && err.message.contains("busy"), "{err}");
    }

    #[test]
    fn a_caller_hangs_up_at_a_time_or_on_a_moment_of_the_call() {
        let s = parse(
            "expect = \"caller-left\"\n[[callers]]\nhang_up = { on = \"hold\", after_s = 2 }\n\
             [[callers]]\nhang_up = { at_s = 9 }\n[[callers]]\nhang_up = { on = \"specialist-ringing\" }\n",
        )
        .expect("valid");
        assert_eq!(s.callers[0].hang_up, Some(HangUp::On { on: CallMoment::Hold, after_s: 2.0 }));
        assert_eq!(s.callers[1].hang_up, Some(HangUp::At { at_s: 9.0 }));
        assert_eq!(
            s.callers[2].hang_up,
            Some(HangUp::On { on: CallMoment::SpecialistRinging, after_s: 0.0 })
        );
        let text = toml::to_string(&s).expect("renders");
        assert_eq!(Scenario::parse(&text, Path::new("again.toml")).expect("round trip"), s);
    }

    #[test]
    fn a_bad_hang_up_names_its_line_and_what_was_expected() {
        let both = parse("expect = \"caller-left\"\n[[callers]]\nhang_up = { at_s = 3, on = \"hold\" }\n")
            .expect_err("both");
        assert_eq!(both.line, 3, "{both}");
        assert!(both.message.contains("not both"), "{both}");
        let unknown = parse("expect = \"caller-left\"\n[[callers]]\nhang_up = { on = \"lunch\" }\n")
            .expect_err("unknown moment");
        assert_eq!(unknown.line, 3, "{unknown}");
        assert!(
            unknown.message.contains("lunch") && unknown.message.contains("specialist-ringing"),
            "{unknown}"
        );
        let neither = parse("expect = \"caller-left\"\n[[callers]]\nhang_up = { after_s = 3 }\n")
            .expect_err("no moment");
        assert!(neither.to_string().starts_with("busy.toml:3:"), "{neither}");
    }

    #[test]
    fn answer_faults_parse_like_the_others() {
        let s = parse(
            "expect = \"returned\"\n[[callers]]\n[[faults]]\npath = \"/twilio/voice\"\naction = \"slow-answer\"\ndelay_s = 20\n\
             [[faults]]\nnth = 1\naction = \"server-error\"\n[[faults]]\naction = \"garbage-twiml\"\n",
        )
        .expect("valid");
        use ringback_sim::faults::FaultAction;
        let actions: Vec<FaultAction> = s.faults.iter().map(|f| f.action.clone()).collect();
        assert_eq!(
            actions,
            [FaultAction::SlowAnswer { delay_s: 20.0 }, FaultAction::ServerError, FaultAction::GarbageTwiml]
        );
        let err = parse("expect = \"returned\"\n[[callers]]\n[[faults]]\naction = \"slow-answer\"\n")
            .expect_err("no delay");
        assert!(err.message.contains("delay_s"), "{err}");
    }

    #[test]
    fn asking_for_an_unknown_department_is_an_error() {
        let err = parse("expect = \"returned\"\n[[callers]]\nasks = [{ transfer_to = [\"sales\"] }]\n")
            .expect_err("no such department");
        assert!(err.message.contains("\"sales\"") && err.message.contains("[[specialists]]"), "{err}");
    }

    #[test]
    fn the_committed_schema_file_is_the_generated_one() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenario.schema.json");
        let generated =
            serde_json::to_string_pretty(&Scenario::json_schema()).expect("schema renders") + "\n";
        if std::env::var_os("RINGBACK_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).expect("schema written");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "scenarios/scenario.schema.json is stale; regenerate it with \
             `RINGBACK_WRITE_SCHEMA=1 cargo test -p ringback-scenarios committed_schema`"
        );
    }

    #[test]
    fn the_schema_is_valid_json_listing_every_top_level_field() {
        let schema = Scenario::json_schema();
        for field in ["expect", "callers", "specialists", "faults", "restart", "rules", "orchestrator"] {
            assert!(schema["properties"].get(field).is_some(), "{field}");
        }
    }
}
