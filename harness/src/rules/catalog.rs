//! The rules' table: ids, levels and deadlines (a contract, SPEC §5), what each asks and how ringback
//! judges it from the journal.

use super::{Level, Rule};

/// Every rule, in the SPEC's order.
pub const RULES: [Rule; 14] = [
    Rule {
        id: "return-on-failure",
        level: Level::Must,
        deadline_s: Some(5.0),
        summary: "when a transfer attempt ends without a human specialist bridged (busy, no-answer, failed, canceled, answered by a machine; a specialist who hangs up within 5 s of answering counts as a failure too), reconnect the caller, if still on the line, to an assistant session within 5 s of the first webhook that reveals the failure, and keep it there until the caller or the assistant ends the call",
        explanation: "A specialist attempt fails when its leg ends busy, no-answer, failed or canceled, when machine detection says a machine or fax answered (or, without detection, the number is one the world answers by machine), when it completes without ever being bridged with the caller, or when it is bridged and ends within 5 s of answering. The clock starts at the first genuine webhook to the target that shows the failure (a status callback with the leg's final status, a Dial action naming it, a request carrying AnsweredBy=machine_*/fax) or at the target's own fetch of the leg that shows it; if nothing ever told the target (a lost callback), no deadline runs, and the rule breaks only if the caller is still waiting, never brought back nor dialed onward, when the run ends. If the caller's leg is still up then, within 5 s the caller must have a media stream connected to a Vapi session that went in-progress, or a new specialist leg must have been placed for the caller (the next number; that attempt is judged in turn), or the caller must be bridged with another specialist a person answered. A caller who hangs up within the 5 s is not owed a return. Once back with an assistant, the caller stays: a REST redirect or hang-up of the caller by the target while that stream is up, with no transfer request (tool-calls, transfer-destination-request, phone-call-control) from the caller's session since it connected, breaks the rule too.",
    },
    Rule {
        id: "bridge-on-answer",
        level: Level::Must,
        deadline_s: Some(5.0),
        summary: "when a human specialist answers, bridge caller and specialist (same started conference, or a Dial bridge) within 5 s",
        explanation: "A person answered a specialist leg placed for a caller when machine detection said human or unknown, or when the leg was answered with no detection and its number is not a machine in this world. From the later of the answer and the detection, while the caller is up, the caller and the specialist must within 5 s be joined to the same conference with that conference in progress, or the specialist must be the caller's own <Dial> child and answered. It is not a violation when the caller hangs up, the specialist hangs up (the far end), or the caller is already bridged with another specialist a person answered, before the deadline.",
    },
    Rule {
        id: "no-voicemail-bridge",
        level: Level::Must,
        deadline_s: None,
        summary: "never bridge the caller to a leg answered by a machine or fax",
        explanation: "A leg is a machine when machine detection said machine_* or fax, or its number is one this world answers by voicemail or fax. The caller and such a leg must never be in the same conference at the same time while the conference is in progress, and such a leg must never be the caller's <Dial> child once answered.",
    },
    Rule {
        id: "caller-never-dropped",
        level: Level::Must,
        deadline_s: None,
        summary: "never end the caller's leg itself before the caller has talked with a human specialist (REST completed/canceled, Hangup, Reject, an application error, a conference ended under the caller with nothing after it)",
        explanation: "Until the caller has been bridged with a specialist leg a person answered, the caller's leg must not end by the target's doing: a REST update by the target with Status=completed or canceled; <Hangup>, <Reject>, an application error (11200, 11205, 12100, …) or the end of the document when the last TwiML the caller ran came from the target (for example a conference that ended under the caller with nothing after it); or an end because a conference the target set up ended. Allowed: the caller hangs up, or the assistant ends the call (Vapi closes the caller's stream and the caller's TwiML runs out with no new conference or stream since, or Vapi itself hangs the caller up). Ending the assistant session through Vapi's API (end-call control, DELETE) counts as the target's doing. Against `vapi-native`, Vapi is the target: the TwiML it gives the caller's leg is the target's, and a session that Vapi ends because the transfer failed (a `call.in-progress.error-…transfer…` endedReason, as after a fallback plan with endCallEnabled) drops the caller.",
    },
    Rule {
        id: "no-orphans",
        level: Level::Must,
        deadline_s: Some(5.0),
        summary: "within 5 s of the caller's leg ending, end every leg and conference it created for that caller; never leave a specialist ringing for a caller who has gone",
        explanation: "Within 5 s of the caller's leg ending, every specialist leg placed for that caller (including one placed later) must have ended, and every conference the caller was in must have ended or have nobody left in it. A run is judged as it stands at its last journal line, so a leg still up then counts as left behind.",
    },
    Rule {
        id: "isolation",
        level: Level::Must,
        deadline_s: None,
        summary: "with concurrent callers, act only on the legs of the conversation that asked for the transfer",
        explanation: "The target redirects or hangs up a caller's leg only after one of that caller's own assistant sessions (a Vapi call whose stream is on that leg) asked for a transfer; it dials an allowed specialist number only after a caller whose transfers may reach that number asked for a transfer; and a caller is never in a conference together with another caller or with a specialist leg placed for another caller. Specialist legs are placed for a caller by, in order: the caller's <Dial>; the one caller whose CallSid the create request names (in its Url or StatusCallback); the one caller in the conference a participant create joined; the caller up at the time, whose transfers may reach the number, who asked most recently.",
    },
    Rule {
        id: "authentic-webhooks",
        level: Level::Must,
        deadline_s: None,
        summary: "reject (4xx, and no call-control action) a Twilio webhook with a missing or wrong X-Twilio-Signature and a Vapi message without the configured secret or credential",
        explanation: "Every delivery the run forged (a wrong X-Twilio-Signature, a Vapi message without its secret or signature) must be answered with a 4xx status; a 2xx, 3xx or 5xx, or no answer, breaks the rule. A forgery sent while nothing listened (the connection was refused: the target was down) is not judged. (Whether a forgery caused an action cannot be told apart from the genuine copy it follows; the other rules catch actions that should not have happened.)",
    },
    Rule {
        id: "tool-response",
        level: Level::Must,
        deadline_s: Some(20.0),
        summary: "answer every tool-calls message within the server timeout with 2xx and a `results` entry for each `toolCallId`",
        explanation: "Every tool-calls message Vapi delivered to the target (not forged; duplicates included) must get, within the run's tool timeout (Vapi's server.timeoutSeconds, 20 s by default), a 2xx answer whose JSON body has a `results` array with an entry whose `toolCallId` is each id in the message's `toolCallList`.",
    },
    Rule {
        id: "valid-twiml",
        level: Level::Must,
        deadline_s: Some(15.0),
        summary: "answer every Twilio webhook that expects TwiML with TwiML that parses and that Twilio would accept, within 15 s",
        explanation: "Every webhook Twilio sent the target expecting TwiML (a voice URL, a Dial or Connect action, a created call's Url, a waitUrl), not forged, must get within 15 s a 2xx answer whose body the fake Twilio's TwiML parser accepts (warnings are fine). An audio content type is a valid answer to a conference waitUrl or hold URL fetch.",
    },
    Rule {
        id: "idempotent-webhooks",
        level: Level::Must,
        deadline_s: None,
        summary: "treat a redelivered webhook (same CallSid and SequenceNumber, same toolCallId) as a no-op: no second dial, no second return, no second Vapi call",
        explanation: "For every caller whose conversation was sent a redelivered webhook, ringback counts what the target did, so it does not matter which copy was acted on: no second REST dial of the same number for that caller while the first leg is still up; no second Vapi POST /call for that caller without a specialist attempt failing in between; no two redirects of the caller in a row to the same place (the same Url or Twiml).",
    },
    Rule {
        id: "destination-allowlist",
        level: Level::Must,
        deadline_s: None,
        summary: "dial only configured specialist destinations; refuse a tool call that asks for any other number",
        explanation: "Every To of a call or conference participant the target creates through Twilio's REST API, and every <Number> in TwiML the target answers a webhook with or sends in a REST request, must be on the allowlist of configured specialist numbers.",
    },
    Rule {
        id: "order-tolerant",
        level: Level::Should,
        deadline_s: Some(2.0),
        summary: "not regress when status callbacks arrive late or out of order",
        explanation: "A status callback is late when the run delayed it, or when its SequenceNumber is lower than one already delivered for the same CallSid and callback URL. Within 2 s after a late callback, and before any fresh webhook about the same conversation, the target must not redirect a caller who is connected to an assistant, create another assistant session for such a caller, or dial a number whose leg for that caller is still up.",
    },
    Rule {
        id: "hold-audio",
        level: Level::Should,
        deadline_s: Some(3.0),
        summary: "while the specialist rings, let the caller hear hold audio; never more than 3 s of silence (a caller alone in a conference that has already started hears nothing: Twilio plays wait music only before the start)",
        explanation: "While a specialist leg placed for the caller is queued, initiated or ringing, and the caller is not connected to an assistant stream, what the caller hears must not be silence (silence, an empty or failed wait document, alone in a started conference) for more than 3 s in a row.",
    },
    Rule {
        id: "context-carryover",
        level: Level::Should,
        deadline_s: None,
        summary: "give the resumed assistant session the outcome of the transfer and the conversation so far (the new session's create request or a control message carries the caller's earlier words)",
        explanation: "Every assistant session the target creates (Vapi POST /call) for a caller who already had one must carry at least one of the caller's earlier utterances in its create request, or in a later request of the target's to Vapi about that session (live call control such as add-message, or an update). A caller who had said nothing is not judged.",
    },
];
