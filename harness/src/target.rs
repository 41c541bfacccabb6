//! Target files: an orchestrator reachable over HTTP, described for `ringback conform` (SPEC §3).
//!
//! A target file says where the orchestrator takes Twilio's and Vapi's webhooks, how its assistant asks
//! for a transfer, the credentials the fakes accept from it and sign for it, the specialist numbers it
//! dials, and optionally the command that starts it. `{name}` placeholders in the command's `env`, `url`
//! and `ready` are filled when ringback starts it: `{port}` (the `PORT` it is given), `{url}` (its base
//! URL) and every variable ringback exports (`{RINGBACK_TWILIO_API_URL}`, …). Start at [`TargetFile`];
//! `fixtures/targets/` holds annotated examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The variables ringback exports to a target's command (SPEC §3), in the order it documents them.
pub const EXPORTED: [&str; 11] = [
    "PORT",
    "RINGBACK_TWILIO_API_URL",
    "RINGBACK_VAPI_API_URL",
    "RINGBACK_TWILIO_ACCOUNT_SID",
    "RINGBACK_TWILIO_AUTH_TOKEN",
    "RINGBACK_VAPI_API_KEY",
    "RINGBACK_VAPI_WEBHOOK_SECRET",
    "RINGBACK_VAPI_ASSISTANT_ID",
    "RINGBACK_VAPI_PHONE_NUMBER_ID",
    "RINGBACK_TWILIO_NUMBER",
    "RINGBACK_SPECIALIST_NUMBERS",
];

/// One target file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// A name for reports (default: the file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// The orchestrator's base URL as Twilio and Vapi reach it; `{port}` when ringback starts it.
    pub url: String,
    /// Where its webhooks are, relative to `url` (or absolute URLs).
    #[serde(default)]
    pub webhooks: Webhooks,
    /// How its assistant asks for a transfer.
    #[serde(default)]
    pub transfer: Transfer,
    /// What the fakes accept from it and sign for it (default: ringback's own test credentials).
    #[serde(default)]
    pub credentials: Credentials,
    /// The specialist numbers it dials, by department, in dialing order. When ringback starts the
    /// orchestrator it gives it numbers of its own instead (`RINGBACK_SPECIALIST_NUMBERS`), and this is
    /// left out.
    #[serde(default)]
    pub specialists: BTreeMap<String, Vec<String>>,
    /// How ringback starts (and restarts) it; absent when it is already running.
    #[serde(default)]
    pub command: Option<Command>,
}

/// The orchestrator's webhook paths.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhooks {
    /// The Twilio number's voice URL.
    pub voice: String,
    /// The number's voice fallback URL, which Twilio asks when the voice URL fails (times out, answers
    /// 5xx or unusable TwiML); none when absent.
    pub voice_fallback: Option<String>,
    /// The Twilio number's status callback, if it wants one.
    pub status: Option<String>,
    /// The Vapi assistant's server URL.
    pub vapi: String,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            voice: "/twilio/voice".into(),
            // The reference's voice handler answers a repeated webhook the same way: its own fallback.
            voice_fallback: Some("/twilio/voice".into()),
            status: Some("/twilio/caller-status".into()),
            vapi: "/vapi/webhook".into(),
        }
    }
}

/// How the assistant asks for a transfer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "style", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Transfer {
    /// A custom tool (`tool-calls` messages): its function name and its arguments, where `{department}`
    /// and `{number}` stand for what the caller asked for.
    Tool {
        #[serde(default = "default_tool")]
        name: String,
        #[serde(default = "default_arguments")]
        arguments: BTreeMap<String, String>,
    },
    /// A `transferCall` tool without destinations: Vapi asks the server (`transfer-destination-request`).
    TransferDestinationRequest,
    /// A `transferCall` tool with `phone-call-control` subscribed: Vapi tells the server to forward.
    PhoneCallControl,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer::Tool { name: default_tool(), arguments: default_arguments() }
    }
}

fn default_tool() -> String {
    ringback_scenarios::plan::TRANSFER_TOOL.into()
}

fn default_arguments() -> BTreeMap<String, String> {
    BTreeMap::from([("department".to_owned(), "{department}".to_owned())])
}

/// The credentials the fakes accept and issue.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub vapi_api_key: String,
    pub vapi_webhook_secret: String,
    pub vapi_assistant_id: String,
    pub vapi_phone_number_id: String,
    /// The Twilio number callers dial.
    pub twilio_number: String,
}

impl Default for Credentials {
    fn default() -> Self {
        use ringback_scenarios::plan as p;
        Credentials {
            twilio_account_sid: p::ACCOUNT.to_string(),
            twilio_auth_token: p::AUTH_TOKEN.into(),
            vapi_api_key: p::VAPI_API_KEY.into(),
            vapi_webhook_secret: p::WEBHOOK_SECRET.into(),
            vapi_assistant_id: p::ASSISTANT_ID.into(),
            vapi_phone_number_id: p::PHONE_NUMBER_ID.into(),
            twilio_number: p::SERVICE_NUMBER.into(),
        }
    }
}

/// How ringback runs the orchestrator.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The program and its arguments.
    pub run: Vec<String>,
    /// Its working folder, relative to the target file (default: the target file's folder).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra variables in the orchestrator's own names, with `{…}` placeholders:
    /// `TWILIO_AUTH_TOKEN = "{RINGBACK_TWILIO_AUTH_TOKEN}"`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A URL (or a path relative to `url`) that answers 2xx once it is ready.
    pub ready: String,
    /// How long it may take to become ready.
    #[serde(default = "default_ready_timeout_s")]
    pub ready_timeout_s: f64,
    /// Whether ringback may stop and start it again for restart scenarios.
    #[serde(default)]
    pub restart: bool,
}

fn default_ready_timeout_s() -> f64 {
    30.0
}

/// A target file that cannot be used: where and why.
pub type TargetError = ringback_scenarios::FileError;

impl TargetFile {
    /// Reads and checks a target file.
    pub fn load(path: &Path) -> Result<TargetFile, TargetError> {
        let text = ringback_scenarios::read_file(path)
            .map_err(|e| TargetError::whole(path, format!("cannot read the target file: {e}")))?;
        TargetFile::parse(&text, path)
    }

    /// Parses and checks a target file; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<TargetFile, TargetError> {
        let target: TargetFile = toml::from_str(text).map_err(|e| TargetError::toml(text, file, &e))?;
        target.check().map_err(|message| TargetError::checked(text, file, message))?;
        Ok(target)
    }

    /// What the parser cannot see.
    fn check(&self) -> Result<(), String> {
        let placeholders = |what: &str, text: &str| -> Result<(), String> {
            for name in placeholder_names(text)? {
                let known = name == "port" || name == "url" || EXPORTED.contains(&name.as_str());
                if !known {
                    return Err(format!(
                        "{what} uses `{{{name}}}`; expected `{{port}}`, `{{url}}` or one of {}",
                        EXPORTED.map(|e| format!("`{{{e}}}`")).join(", ")
                    ));
                }
            }
            Ok(())
        };
        let base = self.url.replace("{port}", "3000");
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("`url` is {:?}; expected an http:// or https:// base URL", self.url));
        }
        placeholders("`url`", &self.url)?;
        let hooks =
            [("webhooks.voice", Some(&self.webhooks.voice)), ("webhooks.vapi", Some(&self.webhooks.vapi))];
        let optional = [
            ("webhooks.status", self.webhooks.status.as_ref()),
            ("webhooks.voice_fallback", self.webhooks.voice_fallback.as_ref()),
        ];
        for (what, hook) in hooks.into_iter().chain(optional) {
            if let Some(hook) = hook
                && !(hook.starts_with('/') || hook.starts_with("http://") || hook.starts_with("https://"))
            {
                return Err(format!("`{what}` is {hook:?}; expected a path starting with `/` or a URL"));
            }
        }
        if let Transfer::Tool { name, arguments } = &self.transfer {
            if name.is_empty() {
                return Err("`transfer.name` is empty; give the custom tool's function name".into());
            }
            let asks = arguments.values().any(|v| v.contains("{department}") || v.contains("{number}"));
            if !asks {
                return Err(
                    "`transfer.arguments` never uses `{department}` or `{number}`, so the orchestrator \
                            could not tell where the caller wants to go"
                        .into(),
                );
            }
        }
        for (department, numbers) in &self.specialists {
            if numbers.is_empty() {
                return Err(format!("`specialists.{department}` lists no numbers"));
            }
            if let Some(bad) = numbers.iter().find(|n| !ringback_scenarios::is_e164(n)) {
                return Err(format!(
                    "`specialists.{department}` has {bad:?}; expected E.164 numbers (`+` then up to 15 digits)"
                ));
            }
        }
        match &self.command {
            None if self.url.contains("{port}") => {
                Err("`url` uses `{port}`, which only a `[command]` ringback starts is given".into())
            }
            None if self.specialists.is_empty() => Err("give the orchestrator's `[specialists]` (ringback \
                                                        cannot choose its numbers when it does not start it)"
                .into()),
            None => Ok(()),
            Some(command) => {
                if command.run.first().is_none_or(String::is_empty) {
                    return Err("`command.run` is empty; give the program and its arguments".into());
                }
                if !(command.ready_timeout_s > 0.0 && command.ready_timeout_s <= 600.0) {
                    return Err(format!(
                        "`command.ready_timeout_s` is {}; expected more than 0 and at most 600 seconds",
                        command.ready_timeout_s
                    ));
                }
                placeholders("`command.ready`", &command.ready)?;
                for (name, value) in &command.env {
                    placeholders(&format!("`command.env.{name}`"), value)?;
                }
                for arg in &command.run {
                    placeholders("`command.run`", arg)?;
                }
                Ok(())
            }
        }
    }

    /// The name reports use.
    pub fn name(&self, file: &Path) -> String {
        self.name.clone().unwrap_or_else(|| {
            file.file_stem().map_or_else(|| "target".into(), |s| s.to_string_lossy().into_owned())
        })
    }
}

/// Fills `{name}` placeholders from `values`; a name it does not know is left as written.
pub fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if values.contains_key(&after[..close]) => {
                out.push_str(&values[&after[..close]]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{name}` placeholders in `text`; an unclosed `{` is an error.
fn placeholder_names(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("{text:?} has a `{{` that is never closed"))?;
        names.push(after[..close].to_owned());
        rest = &after[close + 1..];
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TargetFile, TargetError> {
        TargetFile::parse(text, Path::new("target.toml"))
    }

    const STARTED: &str = r#"
        url = "http://127.0.0.1:{port}"
        [command]
        run = ["node", "server.js"]
        ready = "/healthz"
        env = { TWILIO_AUTH_TOKEN = "{RINGBACK_TWILIO_AUTH_TOKEN}", PUBLIC_URL = "{url}" }
    "#;

    #[test]
    fn a_started_target_takes_the_defaults_of_the_reference_shape() {
        let t = parse(STARTED).expect("valid");
        assert_eq!(t.webhooks, Webhooks::default());
        assert_eq!(t.transfer, Transfer::default());
        assert_eq!(t.credentials, Credentials::default());
        let command = t.command.expect("a command");
        assert_eq!(command.ready_timeout_s, 30.0);
        assert!(!command.restart);
        assert_eq!(t.name.unwrap_or_else(|| "x".into()), "x");
    }

    #[test]
    fn every_transfer_style_parses() {
        for (style, expected) in [
            ("transfer-destination-request", Transfer::TransferDestinationRequest),
            ("phone-call-control", Transfer::PhoneCallControl),
        ] {
            let t = parse(&format!("{STARTED}[transfer]\nstyle = \"{style}\"\n"));
            assert_eq!(t.expect(style).transfer, expected);
        }
        let tool = "[transfer]\nstyle = \"tool\"\nname = \"handoff\"\narguments = { to = \"{number}\" }\n";
        let t = parse(&format!("{STARTED}{tool}")).expect("tool");
        assert_eq!(
            t.transfer,
            Transfer::Tool {
                name: "handoff".into(),
                arguments: BTreeMap::from([("to".into(), "{number}".into())])
            }
        );
    }

    #[test]
    fn mistakes_are_named_with_where_they_are() {
        let typo = parse("url = \"http://x\"\n[webhooks]\nvoise = \"/v\"\n").expect_err("unknown field");
        assert_eq!((typo.line, typo.column), (3, 1), "{typo}");
        assert!(typo.message.contains("voise"), "{typo}");

        let cases = [
            ("url = \"ftp://x\"\n", "http://"),
            ("url = \"http://127.0.0.1:{port}\"\n[specialists]\nsales = [\"+1\"]\n", "only a `[command]`"),
            ("url = \"http://x\"\n", "[specialists]"),
            ("url = \"http://x\"\n[specialists]\nsales = [\"555\"]\n", "E.164"),
            ("url = \"http://x\"\n[specialists]\nsales = []\n", "no numbers"),
            (
                "url = \"http://x\"\n[webhooks]\nvoice = \"voice\"\n[specialists]\ns = [\"+1\"]\n",
                "starting with `/`",
            ),
            (
                "url = \"http://x\"\n[transfer]\nstyle = \"tool\"\narguments = { a = \"b\" }\n[specialists]\ns = [\"+1\"]\n",
                "{department}",
            ),
            (
                "url = \"http://127.0.0.1:{port}\"\n[command]\nrun = [\"x\"]\nready = \"/h\"\nenv = { A = \"{TOKEN}\" }\n",
                "`command.env.A` uses `{TOKEN}`",
            ),
            (
                "url = \"http://127.0.0.1:{port}\"\n[command]\nrun = []\nready = \"/h\"\n",
                "`command.run` is empty",
            ),
            (
                "url = \"http://127.0.0.1:{port}\"\n[command]\nrun = [\"x\"]\nready = \"/h\"\nready_timeout_s = 0\n",
                "ready_timeout_s",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(expected), "{text}\n=> {err}");
        }
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_left_alone() {
        let values =
            BTreeMap::from([("port".to_owned(), "4001".to_owned()), ("url".to_owned(), "http://h".into())]);
        assert_eq!(
            fill("http://127.0.0.1:{port}/x?{a}={url}", &values),
            "http://127.0.0.1:4001/x?{a}=http://h"
        );
        assert_eq!(fill("{", &values), "{");
    }

    #[test]
    fn the_annotated_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/targets");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures/targets") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|x| x == "toml") {
                TargetFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen > 0, "no target files in {}", dir.display());
    }
}
