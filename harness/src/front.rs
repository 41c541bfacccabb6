//! One pair of fakes for many worlds: how `ringback conform` runs many scenarios at once against one
//! orchestrator process.
//!
//! Each scenario keeps a world of its own (its journal is judged alone, as in `ringback run`), and every
//! world sends its webhooks to the same orchestrator. The orchestrator's requests to Twilio and Vapi all
//! reach the same two loopback ports, where the front hands each to the world it belongs to: by a SID or
//! id in the path (a call, a conference, a Vapi call: worlds draw different ones), else by a number in the
//! request (`To`, `From`, Vapi's `customer.number`: every scenario has numbers of its own, see
//! [`ringback_scenarios::Plan::relabel`]), else by a conference's friendly name. A request that names
//! nothing of any world (listing every call, fetching the assistant) goes to the *lobby*: a world with
//! the same account, number and assistant and no callers, whose journal the run reports.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use ringback_sim::runtime::SharedSim;
use tower::ServiceExt as _;

use crate::rules::wire;

/// The most a request to the fakes may carry.
const MAX_BODY: usize = 1 << 20;

/// One world behind the front.
#[derive(Debug)]
pub struct Member {
    pub sim: SharedSim,
    numbers: BTreeSet<String>,
    twilio: Router,
    vapi: Router,
    /// When the front last handed this world a request.
    last_request: Mutex<tokio::time::Instant>,
}

impl Member {
    fn new(sim: SharedSim, numbers: BTreeSet<String>) -> Member {
        Member {
            twilio: ringback_sim::twilio::rest::router(sim.clone()),
            vapi: ringback_sim::vapi::rest::router(sim.clone()),
            sim,
            numbers,
            last_request: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// How long since the orchestrator last asked this world anything.
    pub fn quiet_for(&self) -> std::time::Duration {
        self.last_request.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    fn touch(&self) {
        *self.last_request.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
    }
}

/// The fakes' front: routes each request to its world.
#[derive(Debug)]
pub struct Front {
    lobby: Arc<Member>,
    members: RwLock<Vec<Arc<Member>>>,
}

/// Which fake a request is for.
#[derive(Clone, Copy, Debug)]
enum Api {
    Twilio,
    Vapi,
}

impl Front {
    /// A front whose unattributed requests go to `lobby`.
    pub fn new(lobby: SharedSim) -> Arc<Front> {
        Arc::new(Front { lobby: Arc::new(Member::new(lobby, BTreeSet::new())), members: RwLock::default() })
    }

    /// Puts a world behind the front; `numbers` are its callers' and specialists' (nobody else's).
    pub fn join(&self, sim: SharedSim, numbers: impl IntoIterator<Item = String>) -> Arc<Member> {
        let member = Arc::new(Member::new(sim, numbers.into_iter().collect()));
        self.members.write().unwrap_or_else(|p| p.into_inner()).push(member.clone());
        member
    }

    /// Takes `member`'s world from behind the front: what it would have claimed goes to the lobby.
    pub fn leave(&self, member: &Arc<Member>) {
        self.members.write().unwrap_or_else(|p| p.into_inner()).retain(|m| !Arc::ptr_eq(m, member));
    }

    /// The world that answers what no scenario's world claims.
    pub fn lobby(&self) -> &SharedSim {
        &self.lobby.sim
    }

    /// The fake Twilio's REST API for every world.
    pub fn twilio(self: &Arc<Self>) -> Router {
        Router::new().fallback(twilio).with_state(self.clone())
    }

    /// The fake Vapi's REST API for every world.
    pub fn vapi(self: &Arc<Self>) -> Router {
        Router::new().fallback(vapi).with_state(self.clone())
    }

    async fn forward(&self, api: Api, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
            return (
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("a request body is at most {MAX_BODY} bytes"),
            )
                .into_response();
        };
        let keys = match api {
            Api::Twilio => twilio_keys(parts.uri.path(), parts.uri.query(), &body),
            Api::Vapi => vapi_keys(parts.uri.path(), &body),
        };
        let member = self.owner(&keys);
        member.touch();
        let router = match api {
            Api::Twilio => member.twilio.clone(),
            Api::Vapi => member.vapi.clone(),
        };
        let request = Request::from_parts(parts, Body::from(body));
        match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// The first world that claims one of `keys`, in order; the lobby when none does.
    fn owner(&self, keys: &[Key]) -> Arc<Member> {
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let found = members.iter().find(|m| match key {
                Key::Id(id) => m.sim.world().knows(id),
                Key::Number(number) => m.numbers.contains(number),
            });
            if let Some(member) = found {
                return member.clone();
            }
        }
        self.lobby.clone()
    }
}

async fn twilio(State(front): State<Arc<Front>>, request: Request) -> Response {
    front.forward(Api::Twilio, request).await
}

async fn vapi(State(front): State<Arc<Front>>, request: Request) -> Response {
    front.forward(Api::Vapi, request).await
}

/// What can tell whose a request is, strongest first.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    /// A SID, a Vapi call id or a conference's friendly name.
    Id(String),
    /// A caller's or specialist's number.
    Number(String),
}

/// `/2010-04-01/Accounts/AC…/Calls/CA….json`, `…/Conferences/{sid or name}/Participants/CA….json`:
/// the path's SIDs and names, then `To` and `From` (form body or query), then a `FriendlyName` filter.
fn twilio_keys(path: &str, query: Option<&str>, body: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resources = segments
        .iter()
        .position(|s| *s == "Accounts")
        .map_or(&[][..], |at| &segments[(at + 2).min(segments.len())..]);
    for pair in resources.chunks(2) {
        if let [_, id] = pair {
            let id = id.strip_suffix(".json").unwrap_or(id);
            keys.push(Key::Id(wire::path_segment(id)));
        }
    }
    let mut params = wire::form_pairs(&String::from_utf8_lossy(body));
    params.extend(wire::form_pairs(query.unwrap_or_default()));
    for name in ["To", "From"] {
        keys.extend(params.iter().filter(|(k, _)| k == name).map(|(_, v)| Key::Number(v.clone())));
    }
    keys.extend(params.iter().filter(|(k, _)| k == "FriendlyName").map(|(_, v)| Key::Id(v.clone())));
    keys
}

/// `/call/{id}`, `/{id}/control`: the id; `POST /call`: the customer's number.
fn vapi_keys(path: &str, body: &[u8]) -> Vec<Key> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut keys = Vec::new();
    match segments.as_slice() {
        ["call", id] | [id, "control"] => keys.push(Key::Id(wire::path_segment(id))),
        ["call"] => {
            if let Ok(body) = serde_json::from_slice::<serde_json::Value>(body)
                && let Some(number) = body.pointer("/customer/number").and_then(serde_json::Value::as_str)
            {
                keys.push(Key::Number(number.to_owned()));
            }
        }
        ["twilio", _] => {
            let form = wire::form_pairs(&String::from_utf8_lossy(body));
            for name in ["CallSid", "From", "To"] {
                for (_, v) in form.iter().filter(|(k, _)| k == name) {
                    keys.push(if name == "CallSid" { Key::Id(v.clone()) } else { Key::Number(v.clone()) });
                }
            }
        }
        _ => {}
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_twilio_path_names_its_sids_before_the_numbers_in_its_body() {
        let keys = twilio_keys(
            "/2010-04-01/Accounts/AC00000000000000000000000000000001/Conferences/hold%20CA1/Participants.json",
            None,
            b"To=%2B199900010002&From=%2B15550000100",
        );
        assert_eq!(
            keys,
            [
                Key::Id("hold CA1".into()),
                Key::Number("+199900010002".into()),
                Key::Number("+15550000100".into())
            ]
        );
        let keys = twilio_keys(
            "/2010-04-01/Accounts/AC1/Conferences.json",
            Some("FriendlyName=room-7&Status=in-progress"),
            b"",
        );
        assert_eq!(keys, [Key::Id("room-7".into())]);
        assert_eq!(
            twilio_keys("/2010-04-01/Accounts/AC1/Calls/CAab.json", None, b""),
            [Key::Id("CAab".into())]
        );
    }

    #[test]
    fn a_vapi_call_is_known_by_its_id_or_its_customer() {
        assert_eq!(vapi_keys("/call/abc", b""), [Key::Id("abc".into())]);
        assert_eq!(vapi_keys("/abc/control", b"{}"), [Key::Id("abc".into())]);
        assert_eq!(
            vapi_keys("/call", br#"{"customer": {"number": "+199900010000"}}"#),
            [Key::Number("+199900010000".into())]
        );
        assert!(vapi_keys("/assistant/x", b"").is_empty());
    }
}
