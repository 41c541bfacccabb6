//! A scenario expanded: concrete numbers for every caller and specialist, the world the fakes run, the
//! utterances that make the scripted assistant ask for transfers, and what the judge needs to know.

use ringback_sim::faults::WebhookFault;
use ringback_sim::ids::AccountSid;
use ringback_sim::phone::Behaviour;
use ringback_sim::vapi::script::{Script, ToolInvocation, Turn};
use ringback_sim::watch::CallMoment;
use ringback_sim::world::{AccountConfig, NumberConfig, WorldConfig};
use serde_json::{Map, Value, json};

use crate::{Expect, HangUp, OrchestratorOptions, Restart, Scenario};

/// The Twilio account the scenario's number belongs to.
pub const ACCOUNT: AccountSid = AccountSid::from_u128(1);
pub const AUTH_TOKEN: &str = "ringback-auth-token";
/// The number callers dial.
pub const SERVICE_NUMBER: &str = "+15550000100";
pub const VAPI_API_KEY: &str = "ringback-vapi-key";
pub const ASSISTANT_ID: &str = "00000000-0000-4000-8000-000000000001";
pub const PHONE_NUMBER_ID: &str = "00000000-0000-4000-8000-000000000002";
pub const WEBHOOK_SECRET: &str = "ringback-webhook-secret";
/// The transfer tool's function name.
pub const TRANSFER_TOOL: &str = "transfer_to_specialist";

/// Where the world sends the target's webhooks, the credentials it accepts and signs with, and how the
/// scripted assistant calls the transfer tool.
#[derive(Clone, Debug, PartialEq)]
pub struct Wiring {
    pub voice_url: String,
    pub voice_fallback_url: Option<String>,
    pub status_callback: Option<String>,
    /// The assistant's `server.url`.
    pub server_url: String,
    pub webhook_secret: String,
    pub account: AccountSid,
    pub auth_token: String,
    pub vapi_api_key: String,
    pub assistant_id: String,
    pub phone_number_id: String,
    /// The number callers dial.
    pub service_number: String,
    /// How the scripted assistant asks for a transfer.
    pub transfer: AssistantTransfer,
}

/// How the scripted assistant of an orchestrator's world asks for a transfer.
#[derive(Clone, Debug, PartialEq)]
pub enum AssistantTransfer {
    /// It calls a custom tool (`tool-calls` messages to the server).
    Tool { name: String, arguments: ToolArguments },
    /// It calls a `transferCall` tool without destinations and its server subscribes to
    /// `phone-call-control`: Vapi asks the server to forward the call to the number the caller asked for
    /// (a department's first).
    CallControl,
    /// It calls a `transferCall` tool without destinations and without a destination argument: Vapi asks
    /// the server where to (`transfer-destination-request`, which names no destination).
    DestinationRequest,
}

/// The transfer tool's arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolArguments {
    /// `department` for a department, `number` for a number: the reference orchestrator's tool.
    ByKind,
    /// Each argument's template, with `{department}` and `{number}` standing for the destination (a
    /// number asked for directly stands for both).
    Templates(std::collections::BTreeMap<String, String>),
}

impl ToolArguments {
    fn keys(&self) -> Vec<&str> {
        match self {
            ToolArguments::ByKind => vec!["department", "number"],
            ToolArguments::Templates(t) => t.keys().map(String::as_str).collect(),
        }
    }
}

impl Wiring {
    /// The reference orchestrator at `url`, with ringback's test credentials.
    pub fn reference(url: &str) -> Wiring {
        Wiring {
            voice_url: format!("{url}/twilio/voice"),
            // The voice handler answers a repeated webhook for a call the same way, so it is its own
            // fallback: Twilio asks it again when the first fetch fails (11200, 11205, 12100).
            voice_fallback_url: Some(format!("{url}/twilio/voice")),
            status_callback: Some(format!("{url}/twilio/caller-status")),
            server_url: format!("{url}/vapi/webhook"),
            webhook_secret: WEBHOOK_SECRET.into(),
            account: ACCOUNT,
            auth_token: AUTH_TOKEN.into(),
            vapi_api_key: VAPI_API_KEY.into(),
            assistant_id: ASSISTANT_ID.into(),
            phone_number_id: PHONE_NUMBER_ID.into(),
            service_number: SERVICE_NUMBER.into(),
            transfer: AssistantTransfer::Tool {
                name: TRANSFER_TOOL.into(),
                arguments: ToolArguments::ByKind,
            },
        }
    }
}

/// A scenario made concrete.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub description: String,
    pub seed: u64,
    pub duration_s: f64,
    /// The allowlist: department name and its numbers, in dialing order.
    pub departments: Vec<(String, Vec<String>)>,
    /// Every specialist phone and how it answers.
    pub phones: Vec<(String, Behaviour)>,
    pub callers: Vec<CallerPlan>,
    pub faults: Vec<WebhookFault>,
    pub restart: Option<Restart>,
    pub rules: Option<Vec<String>>,
    pub orchestrator: OrchestratorOptions,
    /// The `transferCall` tool of a `vapi-native` scenario: the fake Vapi transfers by itself, and no
    /// orchestrator takes part.
    pub native_tool: Option<Value>,
}

/// One caller.
#[derive(Clone, Debug, PartialEq)]
pub struct CallerPlan {
    pub number: String,
    pub dial_at_s: f64,
    pub requests: Vec<Request>,
    /// Other things the caller says, at absolute times.
    pub says: Vec<(f64, String)>,
    /// Keys the caller presses, at absolute times.
    pub presses: Vec<(f64, String)>,
    pub hang_up: Option<PlannedHangUp>,
    pub expect: Expect,
    /// The specialist numbers this caller's transfers may reach.
    pub specialists: Vec<String>,
}

/// When a caller hangs up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlannedHangUp {
    /// At `at_s` (absolute).
    At(f64),
    /// `after_s` after the call first reaches the moment.
    On(CallMoment, f64),
}

impl CallerPlan {
    /// When the caller hangs up, if that is a time.
    pub fn hang_up_at_s(&self) -> Option<f64> {
        match self.hang_up {
            Some(PlannedHangUp::At(at_s)) => Some(at_s),
            _ => None,
        }
    }
}

/// A transfer request: at `at_s` (absolute) the caller says `utterance`, and the assistant calls the
/// transfer tool once for each of `destinations` (department names or numbers).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub at_s: f64,
    pub utterance: String,
    pub destinations: Vec<String>,
}

impl Scenario {
    /// Whether each caller gets a copy of every department of their own, so the rules can tell whose
    /// transfer a leg belongs to: with more than one caller, unless a department gives its numbers (given
    /// numbers are the same lines for everyone).
    pub(crate) fn callers_get_own_departments(&self) -> bool {
        let total: u64 = self.callers.iter().map(|g| u64::from(g.count)).sum();
        total > 1 && self.specialists.iter().all(|d| d.numbers.is_empty())
    }

    /// Expands the scenario; `seed` is used when the file sets none.
    pub fn plan(&self, seed: u64) -> Plan {
        let own_copies = self.callers_get_own_departments();
        let mut departments = Vec::new();
        let mut phones = Vec::new();
        let mut callers = Vec::new();
        let mut next_phone = 0u32;
        let mut k = 0u32;
        for group in &self.callers {
            for i in 0..group.count {
                k += 1;
                let tag = |name: &str| if own_copies { format!("{name}_{k:03}") } else { name.to_owned() };
                // This caller's departments: the copies made for them, or everyone's.
                let first = if own_copies { departments.len() } else { 0 };
                if own_copies || k == 1 {
                    for d in &self.specialists {
                        let numbers: Vec<String> = d
                            .phones
                            .iter()
                            .enumerate()
                            .map(|(j, behaviour)| {
                                next_phone += 1;
                                let number = d
                                    .numbers
                                    .get(j)
                                    .cloned()
                                    .unwrap_or_else(|| format!("+1555880{next_phone:04}"));
                                phones.push((number.clone(), behaviour.clone()));
                                number
                            })
                            .collect();
                        departments.push((tag(&d.name), numbers));
                    }
                }
                let specialists: Vec<String> =
                    departments[first..].iter().flat_map(|(_, numbers)| numbers.iter().cloned()).collect();
                let dial_at_s = group.at_s + f64::from(i) * group.stagger_s;
                let requests = group
                    .asks
                    .iter()
                    .enumerate()
                    .map(|(j, ask)| {
                        let destinations: Vec<String> = ask
                            .transfer_to
                            .iter()
                            .map(|to| if to.starts_with('+') { to.clone() } else { tag(to) })
                            .collect();
                        Request {
                            at_s: dial_at_s + ask.at_s,
                            utterance: format!(
                                "I would like to talk to {}, please. Reference rq{k:04}x{j:02}.",
                                destinations.join(" and ")
                            ),
                            destinations,
                        }
                    })
                    .collect();
                callers.push(CallerPlan {
                    number: format!("+1555770{k:04}"),
                    dial_at_s,
                    requests,
                    says: group.says.iter().map(|s| (dial_at_s + s.at_s, s.text.clone())).collect(),
                    presses: group.presses.iter().map(|p| (dial_at_s + p.at_s, p.digits.clone())).collect(),
                    hang_up: group.hang_up.as_ref().map(|h| match *h {
                        HangUp::At { at_s } => PlannedHangUp::At(dial_at_s + at_s),
                        HangUp::On { on, after_s } => PlannedHangUp::On(on, after_s),
                    }),
                    expect: group.expect.unwrap_or(self.expect),
                    specialists,
                });
            }
        }
        Plan {
            description: self.description.clone(),
            seed: self.seed.unwrap_or(seed),
            duration_s: self.duration_s,
            departments,
            phones,
            callers,
            faults: self.faults.clone(),
            restart: self.restart.clone(),
            rules: self.rules.clone(),
            orchestrator: self.orchestrator.clone(),
            native_tool: self.native_tool().cloned(),
        }
    }
}

impl Plan {
    /// The allowlist as the reference orchestrator reads it: `department=+1…|+1…`.
    pub fn specialist_entries(&self) -> Vec<String> {
        self.departments.iter().map(|(name, numbers)| format!("{name}={}", numbers.join("|"))).collect()
    }

    /// Everything that tells the plan's calls from another plan's: its callers' and specialists' numbers,
    /// and every destination a caller asks for (a number, or a department's name).
    pub fn numbers(&self) -> impl Iterator<Item = String> + '_ {
        let asked = self.callers.iter().flat_map(|c| c.requests.iter().flat_map(|r| r.destinations.iter()));
        self.callers.iter().map(|c| &c.number).chain(self.phones.iter().map(|(n, _)| n)).chain(asked).cloned()
    }

    /// Every allowlisted number: the departments' (what the orchestrator is configured with), or in a
    /// `vapi-native` plan the tool's number destinations.
    pub fn allowlist(&self) -> Vec<String> {
        match &self.native_tool {
            Some(tool) => tool
                .get("destinations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("number").and_then(Value::as_str).map(str::to_owned))
                .collect(),
            None => self.departments.iter().flat_map(|(_, n)| n.iter().cloned()).collect(),
        }
    }

    /// Gives the plan numbers and department names of its own, block `block` of many plans served by
    /// one orchestrator at once: every caller and specialist number (and every number a caller asks for)
    /// becomes `+1999BBBBNNNN`, every department `NAME_bBBBB`, and the seed is moved so that the SIDs
    /// and ids its world draws differ from every other block's. The service number stays.
    pub fn relabel(&mut self, block: u16) {
        let mut numbers: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        let mut renumber = |n: &mut String| {
            let next = numbers.len();
            *n = numbers.entry(n.clone()).or_insert_with(|| format!("+1999{block:04}{next:04}")).clone();
        };
        let rename = |name: &mut String| *name = format!("{name}_b{block:04}");
        for caller in &mut self.callers {
            renumber(&mut caller.number);
        }
        for (name, department) in &mut self.departments {
            rename(name);
            department.iter_mut().for_each(&mut renumber);
        }
        for (number, _) in &mut self.phones {
            renumber(number);
        }
        for caller in &mut self.callers {
            caller.specialists.iter_mut().for_each(&mut renumber);
            for destination in caller.requests.iter_mut().flat_map(|r| &mut r.destinations) {
                if destination.starts_with('+') { renumber(destination) } else { rename(destination) }
            }
        }
        self.seed ^= u64::from(block) << 48;
    }

    /// Numbers a voicemail machine or a fax answers.
    pub fn machines(&self) -> Vec<String> {
        self.phones
            .iter()
            .filter(|(_, b)| matches!(b, Behaviour::Machine { .. } | Behaviour::Fax { .. }))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The world the fakes run for the reference orchestrator at `orchestrator_url` (or, in a
    /// `vapi-native` plan, for the fake Vapi alone): see [`Plan::wired_world`].
    pub fn world_config(&self, orchestrator_url: &str) -> WorldConfig {
        self.wired_world(&Wiring::reference(orchestrator_url))
    }

    /// The world the fakes run. With an orchestrator, the service number's voice URL and the
    /// assistant's server are where `wiring` says; in a `vapi-native` plan the number is the fake
    /// Vapi's (imported, with the assistant) and the assistant transfers with the plan's tool.
    pub fn wired_world(&self, wiring: &Wiring) -> WorldConfig {
        let vapi_url = ringback_sim::vapi::VapiConfig::default().public_url;
        let (voice_url, voice_fallback_url, status_callback) = match self.native_tool {
            Some(_) => {
                (format!("{vapi_url}/twilio/inbound_call"), None, Some(format!("{vapi_url}/twilio/status")))
            }
            None => {
                (wiring.voice_url.clone(), wiring.voice_fallback_url.clone(), wiring.status_callback.clone())
            }
        };
        let mut config = WorldConfig {
            seed: self.seed,
            accounts: vec![AccountConfig {
                sid: wiring.account,
                auth_token: wiring.auth_token.clone(),
                numbers: vec![NumberConfig {
                    phone_number: wiring.service_number.clone(),
                    voice_url: Some(voice_url),
                    voice_method: None,
                    voice_fallback_url,
                    status_callback,
                }],
            }],
            faults: self.faults.clone(),
            ..WorldConfig::default()
        };
        config.vapi.api_keys = vec![wiring.vapi_api_key.clone()];
        let mut assistant = json!({
            "id": wiring.assistant_id,
            "name": "front-desk",
            "firstMessage": "Hello, thanks for calling. How can I help?",
            "model": {
                "provider": "openai", "model": "gpt-4o",
                "messages": [{"role": "system", "content": "You answer calls and transfer callers to specialists when they ask."}],
                "tools": [self.native_tool.clone().unwrap_or_else(|| match &wiring.transfer {
                    AssistantTransfer::Tool { name, arguments } => json!({"type": "function", "function": {
                        "name": name,
                        "description": "Transfer the caller to a human specialist.",
                        "parameters": {"type": "object", "properties": Value::Object(
                            arguments.keys().into_iter().map(|k| (k.to_owned(), json!({"type": "string"}))).collect())}}}),
                    // CreateTransferCallToolDTO: `type`, `destinations`, `messages`, `rejectionPlan`.
                    AssistantTransfer::CallControl | AssistantTransfer::DestinationRequest => {
                        json!({"type": "transferCall"})
                    }
                })],
            },
        });
        if self.native_tool.is_none() && wiring.transfer == AssistantTransfer::CallControl {
            let mut messages: Vec<&str> = ringback_sim::vapi::messages::DEFAULT_SERVER_MESSAGES.to_vec();
            messages.push("phone-call-control");
            assistant["serverMessages"] = json!(messages);
        }
        let mut number = json!({
            "id": wiring.phone_number_id, "provider": "twilio", "number": wiring.service_number,
            "twilioAccountSid": wiring.account.to_string(), "twilioAuthToken": wiring.auth_token,
        });
        match &self.native_tool {
            Some(_) => number["assistantId"] = json!(wiring.assistant_id),
            None => {
                assistant["server"] = json!({"url": wiring.server_url, "secret": wiring.webhook_secret});
            }
        }
        config.vapi.assistants.push(assistant);
        config.vapi.phone_numbers.push(number);
        let mut turns = Vec::new();
        for (k, caller) in self.callers.iter().enumerate() {
            for (j, request) in caller.requests.iter().enumerate() {
                turns.push(Turn {
                    user: Some(format!("rq{:04}x{j:02}", k + 1)),
                    say: Some("Let me connect you.".into()),
                    tool_calls: request.destinations.iter().map(|to| self.tool_call(wiring, to)).collect(),
                    ..Turn::default()
                });
            }
        }
        turns.push(Turn { say: Some("I see. Anything else?".into()), ..Turn::default() });
        config.vapi.scripts.push(Script { assistant: wiring.assistant_id.clone(), turns });
        for (number, behaviour) in &self.phones {
            config.phones.insert(number.clone(), behaviour.clone());
        }
        config
    }

    /// The assistant's tool call for a transfer to `to` (a department or a number): the orchestrator's
    /// tool with the wiring's arguments (`{department}` and `{number}` filled in), or the native tool
    /// with the `destination` number (a department's first).
    fn tool_call(&self, wiring: &Wiring, to: &str) -> ToolInvocation {
        // A department's first number, or what was asked for.
        let number = self
            .departments
            .iter()
            .find(|(name, _)| name == to)
            .and_then(|(_, numbers)| numbers.first())
            .map_or(to, String::as_str);
        let destination = || Map::from_iter([("destination".to_owned(), Value::String(number.to_owned()))]);
        if let Some(tool) = &self.native_tool {
            let name = tool.pointer("/function/name").and_then(Value::as_str).unwrap_or("transferCall");
            return ToolInvocation { name: name.into(), arguments: destination() };
        }
        let (name, arguments) = match &wiring.transfer {
            AssistantTransfer::CallControl => ("transferCall", destination()),
            AssistantTransfer::DestinationRequest => ("transferCall", Map::new()),
            AssistantTransfer::Tool { name, arguments: ToolArguments::ByKind } => {
                let key = if to.starts_with('+') { "number" } else { "department" };
                (name.as_str(), Map::from_iter([(key.to_owned(), Value::String(to.to_owned()))]))
            }
            AssistantTransfer::Tool { name, arguments: ToolArguments::Templates(templates) } => {
                let arguments = templates
                    .iter()
                    .map(|(k, template)| {
                        let value = template.replace("{department}", to).replace("{number}", number);
                        (k.clone(), Value::String(value))
                    })
                    .collect();
                (name.as_str(), arguments)
            }
        };
        ToolInvocation { name: name.into(), arguments }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn scenario(callers: &str) -> Scenario {
        let text = format!(
            "expect = \"returned\"\n[[specialists]]\nname = \"sales\"\nphones = [{{ answer = \"busy\" }}, {{ answer = \"machine\" }}]\n{callers}"
        );
        Scenario::parse(&text, Path::new("t.toml")).expect("valid")
    }

    #[test]
    fn one_caller_keeps_department_names_and_gets_numbers() {
        let plan = scenario("[[callers]]\nasks = [{ transfer_to = [\"sales\"] }]\n").plan(3);
        assert_eq!(plan.specialist_entries(), ["sales=+15558800001|+15558800002"]);
        assert_eq!(plan.callers[0].specialists, ["+15558800001", "+15558800002"]);
        assert_eq!(plan.machines(), ["+15558800002"]);
        assert_eq!(plan.callers[0].requests[0].destinations, ["sales"]);
        assert_eq!(plan.seed, 3);
    }

    #[test]
    fn concurrent_callers_each_get_their_own_departments() {
        let plan =
            scenario("[[callers]]\ncount = 2\nstagger_s = 1\nasks = [{ transfer_to = [\"sales\"] }]\n")
                .plan(1);
        assert_eq!(
            plan.specialist_entries(),
            ["sales_001=+15558800001|+15558800002", "sales_002=+15558800003|+15558800004"]
        );
        assert_eq!(plan.callers[1].specialists, ["+15558800003", "+15558800004"]);
        assert_eq!(plan.callers[1].requests[0].destinations, ["sales_002"]);
        assert_eq!(plan.callers[1].dial_at_s, 1.0);
        assert_eq!(plan.callers[1].requests[0].at_s, 6.0);
    }

    #[test]
    fn relabelling_gives_a_block_its_own_numbers_and_departments() {
        let mut plan =
            scenario("[[callers]]\ncount = 2\nasks = [{ transfer_to = [\"sales\", \"+15559999999\"] }]\n")
                .plan(1);
        plan.relabel(7);
        assert_eq!(plan.callers[0].number, "+199900070000");
        assert_eq!(plan.callers[1].number, "+199900070001");
        assert_eq!(
            plan.departments[1],
            ("sales_002_b0007".into(), vec!["+199900070004".into(), "+199900070005".into()])
        );
        assert_eq!(plan.phones[2].0, "+199900070004");
        assert_eq!(plan.callers[1].specialists, ["+199900070004", "+199900070005"]);
        assert_eq!(plan.callers[1].requests[0].destinations, ["sales_002_b0007", "+199900070006"]);
        assert_ne!(plan.seed, 1);
        let mut other = scenario("[[callers]]\nasks = [{ transfer_to = [\"sales\"] }]\n").plan(1);
        other.relabel(8);
        assert!(other.callers.iter().all(|c| c.number.starts_with("+19990008")));
    }

    #[test]
    fn the_world_scripts_one_turn_per_request() {
        let plan =
            scenario("[[callers]]\nasks = [{ transfer_to = [\"sales\", \"+15559999999\"] }]\n").plan(1);
        let world = plan.world_config("http://o.test");
        let turns = &world.vapi.scripts[0].turns;
        assert_eq!(turns.len(), 2);
        assert!(plan.callers[0].requests[0].utterance.contains(turns[0].user.as_deref().unwrap()));
        assert_eq!(turns[0].tool_calls[1].arguments["number"], "+15559999999");
        ringback_sim::world::World::new(world).expect("the world is valid");
    }
}
