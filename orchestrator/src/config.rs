//! Configuration: flags with environment fallbacks, then the `RINGBACK_*` variables `ringback conform`
//! exports, then defaults; and the specialist allowlist.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use indexmap::IndexMap;

use crate::http::Secret;
use crate::machine::Destination;
use crate::store::StoreSpec;

/// Twilio's REST API.
pub const TWILIO_API_URL: &str = "https://api.twilio.com";
/// Vapi's REST API.
pub const VAPI_API_URL: &str = "https://api.vapi.ai";
/// Twilio's own hold music (one of the tracks its default `waitUrl` plays).
pub const HOLD_MUSIC_URL: &str = "http://com.twilio.sounds.music.s3.amazonaws.com/ClockworkWaltz.mp3";

/// The command line. Every flag also reads an environment variable; a few fall back to the `RINGBACK_*`
/// variable of the same meaning, so `ringback conform` can start this service unchanged.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "ringback-orchestrator",
    version,
    about = "Transfers callers between a Vapi assistant and human specialists over Twilio, and brings them back when a transfer fails"
)]
pub struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub host: IpAddr,
    /// The URL Twilio and Vapi reach this service at (behind a proxy: the proxy's). Webhook signatures
    /// are checked against it. Default: http://127.0.0.1:PORT.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Twilio account SID [fallback: RINGBACK_TWILIO_ACCOUNT_SID].
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token [fallback: RINGBACK_TWILIO_AUTH_TOKEN].
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// Twilio's API base URL [fallback: RINGBACK_TWILIO_API_URL; default: <https://api.twilio.com>].
    #[arg(long, env = "TWILIO_API_URL")]
    pub twilio_api_url: Option<String>,
    /// Vapi private API key [fallback: RINGBACK_VAPI_API_KEY].
    #[arg(long, env = "VAPI_API_KEY", hide_env_values = true)]
    pub vapi_api_key: Option<String>,
    /// Vapi's API base URL [fallback: RINGBACK_VAPI_API_URL; default: <https://api.vapi.ai>].
    #[arg(long, env = "VAPI_API_URL")]
    pub vapi_api_url: Option<String>,
    /// The assistant callers talk to [fallback: RINGBACK_VAPI_ASSISTANT_ID].
    #[arg(long, env = "VAPI_ASSISTANT_ID")]
    pub vapi_assistant_id: Option<String>,
    /// The Vapi phone number (your imported Twilio number) calls are made with [fallback:
    /// RINGBACK_VAPI_PHONE_NUMBER_ID].
    #[arg(long, env = "VAPI_PHONE_NUMBER_ID")]
    pub vapi_phone_number_id: Option<String>,
    /// The secret Vapi sends with every server message (`server.secret` as `x-vapi-secret`, or a bearer
    /// credential) [fallback: RINGBACK_VAPI_WEBHOOK_SECRET].
    #[arg(long, env = "VAPI_WEBHOOK_SECRET", hide_env_values = true)]
    pub vapi_webhook_secret: Option<String>,
    /// The secret of an HMAC webhook credential (SHA-256, hex, `{timestamp}.{body}`), if Vapi signs
    /// messages instead.
    #[arg(long, env = "VAPI_WEBHOOK_HMAC_SECRET", hide_env_values = true)]
    pub vapi_webhook_hmac_secret: Option<String>,
    /// How old an HMAC-signed message's timestamp may be, in seconds (0: not checked).
    #[arg(long, env = "VAPI_WEBHOOK_TOLERANCE_S", default_value_t = 300)]
    pub vapi_webhook_tolerance_s: u64,
    /// A specialist destination: `department=+15551230001` (fallback numbers after `|`), or a bare
    /// number. Repeat the flag, or separate entries with commas [fallback: RINGBACK_SPECIALIST_NUMBERS].
    #[arg(long = "specialist", env = "SPECIALISTS", value_delimiter = ',')]
    pub specialists: Vec<String>,
    /// The department a `transfer-destination-request` or a request without arguments goes to
    /// (default: the first).
    #[arg(long, env = "DEFAULT_DEPARTMENT")]
    pub default_department: Option<String>,
    /// How long a specialist's phone rings before the attempt counts as unanswered, in seconds.
    #[arg(long, env = "RING_TIMEOUT_S", default_value_t = 30, value_parser = clap::value_parser!(u32).range(5..=600))]
    pub ring_timeout_s: u32,
    /// Twilio's machine detection on specialist legs: `Enable` (decides at the start of a greeting) or
    /// `DetectMessageEnd` (waits for the beep).
    #[arg(long, env = "MACHINE_DETECTION", default_value = "Enable", value_parser = ["Enable", "DetectMessageEnd"])]
    pub machine_detection: String,
    /// The name of the assistant's transfer tool (a function tool whose server is this service).
    #[arg(long, env = "TRANSFER_TOOL", default_value = "transfer_to_specialist")]
    pub transfer_tool: String,
    /// Audio played to a caller on hold.
    #[arg(long, env = "HOLD_MUSIC_URL", default_value = HOLD_MUSIC_URL)]
    pub hold_music_url: String,
    /// The number specialists see calling (default: the number the caller dialed) [fallback:
    /// RINGBACK_TWILIO_NUMBER].
    #[arg(long, env = "CALLER_ID")]
    pub caller_id: Option<String>,
    /// Where per-call state lives: a file path, or `memory` (lost on restart).
    #[arg(long, env = "STORE", default_value = "ringback-orchestrator.redb")]
    pub store: StoreSpec,
    /// How many finished calls are remembered (to recognise late and repeated webhooks).
    #[arg(long, env = "MAX_FINISHED_CALLS", default_value_t = 10_000)]
    pub max_finished_calls: usize,
    /// Deadline for each request to Twilio or Vapi, in seconds.
    #[arg(long, env = "API_TIMEOUT_S", default_value_t = 10)]
    pub api_timeout_s: u64,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Without a trailing slash.
    pub public_url: String,
    pub twilio_api_url: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: Secret,
    pub vapi_api_url: String,
    pub vapi_api_key: Secret,
    pub vapi_assistant_id: String,
    pub vapi_phone_number_id: String,
    pub vapi_webhook_secret: Option<Secret>,
    pub vapi_webhook_hmac_secret: Option<Secret>,
    pub vapi_webhook_tolerance_s: u64,
    pub specialists: Directory,
    pub ring_timeout_s: u32,
    pub machine_detection: String,
    pub transfer_tool: String,
    pub hold_music_url: String,
    pub caller_id: Option<String>,
    pub store: StoreSpec,
    pub max_finished_calls: usize,
    pub api_timeout_s: u64,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing configuration:\n  - {}", .0.join("\n  - "))]
    Missing(Vec<String>),
    #[error("specialist entry `{entry}`: {why}")]
    Specialist { entry: String, why: String },
    #[error("default department `{0}` is not one of the specialist departments")]
    DefaultDepartment(String),
    #[error("{name} `{value}` is not an http(s) URL")]
    Url { name: &'static str, value: String },
}

impl Config {
    /// Resolves `args`, reading the `RINGBACK_*` fallbacks through `env`.
    pub fn resolve(args: Args, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let fallback =
            |value: Option<String>, name: &str| value.or_else(|| env(name).filter(|v| !v.is_empty()));
        let mut missing = Vec::new();
        let mut required = |value: Option<String>, flag: &str, var: &str, ringback: &str| {
            let value = fallback(value, ringback);
            if value.is_none() {
                missing.push(format!("--{flag} (or {var}, or {ringback})"));
            }
            value.unwrap_or_default()
        };
        let twilio_account_sid = required(
            args.twilio_account_sid,
            "twilio-account-sid",
            "TWILIO_ACCOUNT_SID",
            "RINGBACK_TWILIO_ACCOUNT_SID",
        );
        let twilio_auth_token = required(
            args.twilio_auth_token,
            "twilio-auth-token",
            "TWILIO_AUTH_TOKEN",
            "RINGBACK_TWILIO_AUTH_TOKEN",
        );
        let vapi_api_key =
            required(args.vapi_api_key, "vapi-api-key", "VAPI_API_KEY", "RINGBACK_VAPI_API_KEY");
        let vapi_assistant_id = required(
            args.vapi_assistant_id,
            "vapi-assistant-id",
            "VAPI_ASSISTANT_ID",
            "RINGBACK_VAPI_ASSISTANT_ID",
        );
        let vapi_phone_number_id = required(
            args.vapi_phone_number_id,
            "vapi-phone-number-id",
            "VAPI_PHONE_NUMBER_ID",
            "RINGBACK_VAPI_PHONE_NUMBER_ID",
        );
        let vapi_webhook_secret = fallback(args.vapi_webhook_secret, "RINGBACK_VAPI_WEBHOOK_SECRET");
        if vapi_webhook_secret.is_none() && args.vapi_webhook_hmac_secret.is_none() {
            missing.push(
                "--vapi-webhook-secret (or VAPI_WEBHOOK_SECRET, or RINGBACK_VAPI_WEBHOOK_SECRET) or \
                 --vapi-webhook-hmac-secret: Vapi messages must be authenticated"
                    .to_owned(),
            );
        }
        let mut entries = args.specialists;
        if entries.is_empty()
            && let Some(list) = env("RINGBACK_SPECIALIST_NUMBERS")
        {
            entries = list.split(',').map(str::to_owned).collect();
        }
        entries.retain(|e| !e.trim().is_empty());
        if entries.is_empty() {
            missing.push("--specialist (or SPECIALISTS, or RINGBACK_SPECIALIST_NUMBERS)".to_owned());
        }
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        let specialists = Directory::parse(&entries, args.default_department.as_deref())?;
        let url = |name: &'static str, value: String| {
            let value = value.trim_end_matches('/').to_owned();
            if value.starts_with("http://") || value.starts_with("https://") {
                Ok(value)
            } else {
                Err(ConfigError::Url { name, value })
            }
        };
        let public_url = url(
            "--public-url",
            args.public_url.unwrap_or_else(|| format!("http://127.0.0.1:{}", args.port)),
        )?;
        Ok(Config {
            listen: SocketAddr::new(args.host, args.port),
            public_url,
            twilio_api_url: url(
                "--twilio-api-url",
                fallback(args.twilio_api_url, "RINGBACK_TWILIO_API_URL")
                    .unwrap_or_else(|| TWILIO_API_URL.into()),
            )?,
            twilio_account_sid,
            twilio_auth_token: Secret::from(twilio_auth_token),
            vapi_api_url: url(
                "--vapi-api-url",
                fallback(args.vapi_api_url, "RINGBACK_VAPI_API_URL").unwrap_or_else(|| VAPI_API_URL.into()),
            )?,
            vapi_api_key: Secret::from(vapi_api_key),
            vapi_assistant_id,
            vapi_phone_number_id,
            vapi_webhook_secret: vapi_webhook_secret.map(Secret::from),
            vapi_webhook_hmac_secret: args.vapi_webhook_hmac_secret.map(Secret::from),
            vapi_webhook_tolerance_s: args.vapi_webhook_tolerance_s,
            specialists,
            ring_timeout_s: args.ring_timeout_s,
            machine_detection: args.machine_detection,
            transfer_tool: args.transfer_tool,
            hold_music_url: args.hold_music_url,
            caller_id: fallback(args.caller_id, "RINGBACK_TWILIO_NUMBER"),
            store: args.store,
            max_finished_calls: args.max_finished_calls.max(1),
            api_timeout_s: args.api_timeout_s.max(1),
        })
    }

    /// A configuration for tests and embedding: the given credentials, specialists and public URL,
    /// defaults for the rest, state in memory.
    pub fn for_tests(public_url: &str, specialists: &[&str]) -> Config {
        let mut args = Args::parse_from(["ringback-orchestrator", "--store", "memory"]);
        args.public_url = Some(public_url.to_owned());
        args.specialists = specialists.iter().map(|s| (*s).to_owned()).collect();
        args.twilio_account_sid = Some("AC00000000000000000000000000000001".into());
        args.twilio_auth_token = Some("test-auth-token".into());
        args.vapi_api_key = Some("test-vapi-key".into());
        args.vapi_assistant_id = Some("00000000-0000-4000-8000-000000000001".into());
        args.vapi_phone_number_id = Some("00000000-0000-4000-8000-000000000002".into());
        args.vapi_webhook_secret = Some("test-webhook-secret".into());
        Config::resolve(args, |_| None).expect("test configuration is complete")
    }

    /// The store path, when state is kept in a file.
    pub fn store_path(&self) -> Option<PathBuf> {
        match &self.store {
            StoreSpec::File(path) => Some(path.clone()),
            StoreSpec::Memory => None,
        }
    }
}

/// The most department names a refusal lists. The refusal becomes part of the conversation, which every
/// later Vapi message carries (several times over), so a directory of thousands listed in full would
/// swell every message past what a webhook may be.
const REFUSAL_NAMES: usize = 10;

/// The specialist allowlist: departments and their numbers, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    departments: IndexMap<String, Vec<String>>,
    default: String,
}

impl Directory {
    /// Parses `department=number|fallback` and bare `number` entries; a bare number is a department of
    /// its own, named by the number.
    pub fn parse(entries: &[String], default: Option<&str>) -> Result<Directory, ConfigError> {
        let mut departments: IndexMap<String, Vec<String>> = IndexMap::new();
        for entry in entries {
            let entry = entry.trim();
            let bad = |why: &str| ConfigError::Specialist { entry: entry.to_owned(), why: why.to_owned() };
            let (name, numbers) = match entry.split_once('=') {
                Some((name, numbers)) => (name.trim().to_lowercase(), numbers),
                None => (entry.to_owned(), entry),
            };
            if name.is_empty() {
                return Err(bad("the department name is empty; write `department=+15551230001`"));
            }
            let numbers: Vec<String> = numbers.split('|').map(|n| n.trim().to_owned()).collect();
            if let Some(n) = numbers.iter().find(|n| !is_destination(n)) {
                return Err(bad(&format!(
                    "`{n}` is not a phone number in E.164 form (`+15551230001`) or a `sip:` URI"
                )));
            }
            if departments.insert(name, numbers).is_some() {
                return Err(bad("this department is listed twice"));
            }
        }
        let Some(first) = departments.keys().next().cloned() else {
            return Err(ConfigError::Missing(vec!["at least one --specialist".into()]));
        };
        let default = match default {
            Some(d) if departments.contains_key(&d.to_lowercase()) => d.to_lowercase(),
            Some(d) => return Err(ConfigError::DefaultDepartment(d.to_owned())),
            None => first,
        };
        Ok(Directory { departments, default })
    }

    /// Where a transfer request may go: a department by name (any case), or a number listed under one.
    /// The error is the refusal the assistant hears.
    pub fn resolve(&self, requested: Option<&str>) -> Result<Destination, String> {
        let requested = requested.map(str::trim).filter(|r| !r.is_empty());
        let Some(requested) = requested else { return Ok(self.destination(&self.default)) };
        let name = requested.to_lowercase();
        if self.departments.contains_key(&name) {
            return Ok(self.destination(&name));
        }
        let wanted = normalize(requested);
        let listed = self.departments.values().flatten().find(|n| normalize(n) == wanted);
        match listed {
            Some(number) => Ok(Destination { department: number.clone(), numbers: vec![number.clone()] }),
            None => {
                let names: Vec<&str> =
                    self.departments.keys().take(REFUSAL_NAMES).map(String::as_str).collect();
                let more = self.departments.len().saturating_sub(REFUSAL_NAMES);
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                Err(format!(
                    "Cannot transfer to {requested}: it is not a department or number this line transfers to. \
                     Departments: {}{more}.",
                    names.join(", ")
                ))
            }
        }
    }

    fn destination(&self, department: &str) -> Destination {
        Destination { department: department.to_owned(), numbers: self.departments[department].clone() }
    }

    /// Every number, for logs and checks.
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.departments.values().flatten().map(String::as_str)
    }
}

fn is_destination(n: &str) -> bool {
    let e164 = n
        .strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    e164 || (n.starts_with("sip:") && n.len() > 4)
}

/// A number without the punctuation people write in it.
fn normalize(n: &str) -> String {
    n.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["ringback-orchestrator", "--store", "memory"];
        argv.extend_from_slice(extra);
        Args::parse_from(argv)
    }

    #[test]
    fn ringback_variables_fill_what_flags_leave_out() {
        let env = |name: &str| {
            Some(match name {
                "RINGBACK_TWILIO_ACCOUNT_SID" => "AC1".to_owned(),
                "RINGBACK_TWILIO_AUTH_TOKEN" => "tok".to_owned(),
                "RINGBACK_TWILIO_API_URL" => "http://127.0.0.1:9/".to_owned(),
                "RINGBACK_VAPI_API_KEY" => "key".to_owned(),
                "RINGBACK_VAPI_API_URL" => "http://127.0.0.1:8".to_owned(),
                "RINGBACK_VAPI_ASSISTANT_ID" => "asst".to_owned(),
                "RINGBACK_VAPI_PHONE_NUMBER_ID" => "pn".to_owned(),
                "RINGBACK_VAPI_WEBHOOK_SECRET" => "s".to_owned(),
                "RINGBACK_SPECIALIST_NUMBERS" => "+15550001,+15550002".to_owned(),
                "RINGBACK_TWILIO_NUMBER" => "+15550100".to_owned(),
                _ => return None,
            })
        };
        let config = Config::resolve(args(&["--port", "4100"]), env).expect("complete");
        assert_eq!(config.twilio_api_url, "http://127.0.0.1:9");
        assert_eq!(config.public_url, "http://127.0.0.1:4100");
        assert_eq!(config.caller_id.as_deref(), Some("+15550100"));
        assert_eq!(config.specialists.numbers().collect::<Vec<_>>(), ["+15550001", "+15550002"]);
        let flags = Config::resolve(args(&["--twilio-account-sid", "AC2"]), env).expect("complete");
        assert_eq!(flags.twilio_account_sid, "AC2");
    }

    #[test]
    fn every_missing_setting_is_named_at_once() {
        let err = Config::resolve(args(&[]), |_| None).expect_err("nothing configured").to_string();
        for name in ["--twilio-account-sid", "--vapi-api-key", "--vapi-webhook-secret", "--specialist"] {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let config = Config::for_tests("http://orchestrator.test", &["sales=+15550001"]);
        let text = format!("{config:?}");
        assert!(!text.contains("test-auth-token") && !text.contains("test-webhook-secret"), "{text}");
    }

    #[test]
    fn departments_numbers_and_fallbacks_resolve_and_others_are_refused() {
        let entries = ["Sales=+15550001|+15550002".to_owned(), "+15550003".to_owned()];
        let d = Directory::parse(&entries, None).expect("valid");
        assert_eq!(d.resolve(Some("SALES")).unwrap().numbers, ["+15550001", "+15550002"]);
        assert_eq!(d.resolve(None).unwrap().department, "sales");
        assert_eq!(d.resolve(Some("+1 555-0003")).unwrap().numbers, ["+15550003"]);
        assert_eq!(d.resolve(Some("+15550002")).unwrap().numbers, ["+15550002"]);
        let refusal = d.resolve(Some("+15559999")).expect_err("not listed");
        assert!(refusal.contains("+15559999") && refusal.contains("sales"), "{refusal}");
    }

    #[test]
    fn a_refusal_names_ten_departments_at_most() {
        let entries: Vec<String> = (0..3000).map(|i| format!("dept{i}=+1555{i:07}")).collect();
        let d = Directory::parse(&entries, None).expect("valid");
        let refusal = d.resolve(Some("nowhere")).expect_err("not listed");
        assert!(refusal.ends_with("Departments: dept0, dept1, dept2, dept3, dept4, dept5, dept6, dept7, dept8, dept9 and 2990 more."), "{refusal}");
        let d = Directory::parse(&entries[..10], None).expect("valid");
        let refusal = d.resolve(Some("nowhere")).expect_err("not listed");
        assert!(refusal.ends_with("dept8, dept9."), "{refusal}");
    }

    #[test]
    fn bad_entries_say_which_and_why() {
        let err = Directory::parse(&["sales=5550001".to_owned()], None).expect_err("not E.164").to_string();
        assert!(err.contains("sales=5550001") && err.contains("E.164"), "{err}");
        let err = Directory::parse(&["=+15550001".to_owned()], None).expect_err("no name").to_string();
        assert!(err.contains("department name"), "{err}");
        let err = Directory::parse(&["a=+15550001".to_owned()], Some("b")).expect_err("unknown default");
        assert!(err.to_string().contains("`b`"), "{err}");
    }
}
