//! Faults a run injects into the webhooks the fakes send the target: duplicated, delayed, dropped or
//! forged deliveries, and answers that reach the sender late, as a 500 or as unparsable TwiML. Each is
//! journaled on the exchange it touched (`HttpExchange::fault`, and `HttpExchange::target_answer` for
//! what the target really answered), so the rules see exactly what the target was sent and what it said.

use serde::{Deserialize, Serialize};

use crate::journal::Party;
use crate::transport::OutboundRequest;

/// One fault: which webhooks it touches and what happens to them. A webhook takes at most one fault: the
/// first listed that matches it (every fault that matches counts it for its `nth`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookFault {
    /// The sender: `twilio` or `vapi`; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Sender>,
    /// A piece of the webhook URL's path, `/twilio/specialist-status`; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Twilio webhooks whose `CallStatus` is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_status: Option<String>,
    /// Vapi messages of this `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Only the nth webhook that matches (1-based); every one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u32>,
    #[serde(flatten)]
    pub action: FaultAction,
}

/// Which fake sends a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sender {
    Twilio,
    Vapi,
}

/// What happens to a matching webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum FaultAction {
    /// Delivered twice in a row; the sender acts on the first answer.
    Duplicate,
    /// Sent `delay_s` later than it would have been, which can put it after webhooks sent later.
    Delay { delay_s: f64 },
    /// Never reaches the target: the sender sees a failed connection.
    Drop,
    /// Delivered as sent, and followed by a copy with a wrong signature (Twilio) or without the secret
    /// (Vapi), which the target must refuse.
    Forge,
    /// The target's answer reaches the sender `delay_s` after the target gave it. Beyond the sender's
    /// timeout (Twilio's 15 s, Vapi's `server.timeoutSeconds`) the sender has given up: a timeout.
    SlowAnswer { delay_s: f64 },
    /// The sender gets `500 Internal Server Error` instead of the target's answer.
    ServerError,
    /// The sender gets a `200` whose body is not a TwiML document (nor JSON) instead of the target's
    /// answer: Twilio's 12100, or an unreadable answer for Vapi.
    GarbageTwiml,
}

impl FaultAction {
    /// Whether the fault changes the target's answer rather than the delivery.
    pub fn is_about_the_answer(&self) -> bool {
        matches!(self, FaultAction::SlowAnswer { .. } | FaultAction::ServerError | FaultAction::GarbageTwiml)
    }
}

/// The body a `garbage-twiml` fault puts in place of the target's answer: XML cut off before it closes.
pub const GARBAGE_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>We are";

impl WebhookFault {
    /// Whether `request` from `sender` is one this fault is about (before `nth` is counted).
    pub fn matches(&self, sender: Party, request: &OutboundRequest) -> bool {
        let from_ok = match self.from {
            None => true,
            Some(Sender::Twilio) => sender == Party::Twilio,
            Some(Sender::Vapi) => sender == Party::Vapi,
        };
        let path = request.url.split('?').next().unwrap_or_default();
        let path_ok = self.path.as_deref().is_none_or(|p| path.contains(p));
        let status_ok = self.call_status.as_deref().is_none_or(|want| {
            form_urlencoded::parse(&request.body).any(|(k, v)| k == "CallStatus" && v == want)
        });
        let message_ok = self.message.as_deref().is_none_or(|want| {
            serde_json::from_slice::<serde_json::Value>(&request.body)
                .ok()
                .is_some_and(|v| v.pointer("/message/type").and_then(|t| t.as_str()) == Some(want))
        });
        from_ok && path_ok && status_ok && message_ok
    }
}

/// `request` as a forger would send it: a Twilio webhook with a wrong `X-Twilio-Signature`, a Vapi
/// message without its secret, bearer token or HMAC signature.
pub fn forge(sender: Party, mut request: OutboundRequest) -> (OutboundRequest, &'static str) {
    if sender == Party::Twilio {
        for (name, value) in &mut request.headers {
            if name.eq_ignore_ascii_case("x-twilio-signature") {
                // A well-formed signature of something else.
                *value = "bm90IHRoZSByaWdodCBzaWduYXR1cmU=".to_owned();
            }
        }
        (request, "forged: wrong X-Twilio-Signature")
    } else {
        let secret = |name: &str| {
            ["x-vapi-secret", "authorization", "x-signature", "x-timestamp"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
        };
        request.headers.retain(|(name, _)| !secret(name));
        (request, "forged: no Vapi secret or signature")
    }
}
