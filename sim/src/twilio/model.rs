//! The vocabulary of the fake Twilio, spelled as Twilio spells it on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An HTTP method a TwiML attribute or REST parameter may name (`method`, `StatusCallbackMethod`, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[default]
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl FromStr for Method {
    type Err = ();
    /// Twilio accepts the method names in any case.
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.eq_ignore_ascii_case("GET") {
            Ok(Method::Get)
        } else if s.eq_ignore_ascii_case("POST") {
            Ok(Method::Post)
        } else {
            Err(())
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
    };
}

wire_enum!(
    /// A call resource's `status` (spec `call_enum_status`). `initiated` is not one: it exists only as a
    /// status-callback value.
    CallStatus {
        Queued = "queued",
        Ringing = "ringing",
        InProgress = "in-progress",
        Completed = "completed",
        Busy = "busy",
        Failed = "failed",
        NoAnswer = "no-answer",
        Canceled = "canceled",
    }
);

impl CallStatus {
    /// Whether the leg is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }
}

wire_enum!(
    /// A `StatusCallbackEvent` a call can subscribe to.
    CallEvent {
        Initiated = "initiated",
        Ringing = "ringing",
        Answered = "answered",
        Completed = "completed",
    }
);

wire_enum!(
    /// A call's `direction`.
    Direction {
        Inbound = "inbound",
        OutboundApi = "outbound-api",
        OutboundDial = "outbound-dial",
    }
);

wire_enum!(
    /// `MachineDetection`.
    AmdMode {
        Enable = "Enable",
        DetectMessageEnd = "DetectMessageEnd",
    }
);

wire_enum!(
    /// `AnsweredBy`, as answering machine detection reports it.
    AnsweredBy {
        Human = "human",
        MachineStart = "machine_start",
        MachineEndBeep = "machine_end_beep",
        MachineEndSilence = "machine_end_silence",
        MachineEndOther = "machine_end_other",
        Fax = "fax",
        Unknown = "unknown",
    }
);

impl AnsweredBy {
    /// Answered by anything but a person.
    pub fn is_machine(self) -> bool {
        !matches!(self, AnsweredBy::Human | AnsweredBy::Unknown)
    }
}

wire_enum!(
    /// A conference `StatusCallbackEvent` subscription (TwiML `statusCallbackEvent`, REST
    /// `ConferenceStatusCallbackEvent`).
    ConferenceEvent {
        Start = "start",
        End = "end",
        Join = "join",
        Leave = "leave",
        Mute = "mute",
        Hold = "hold",
        Modify = "modify",
        Speaker = "speaker",
        Announcement = "announcement",
    }
);

wire_enum!(
    /// A conference resource's `status` (spec `conference_enum_status`).
    ConferenceStatus {
        Init = "init",
        InProgress = "in-progress",
        Completed = "completed",
    }
);

wire_enum!(
    /// `reason_conference_ended` (spec `conference_enum_reason_conference_ended`).
    ConferenceEndReason {
        EndedViaApi = "conference-ended-via-api",
        EndOnExitLeft = "participant-with-end-conference-on-exit-left",
        EndOnExitKicked = "participant-with-end-conference-on-exit-kicked",
        LastKicked = "last-participant-kicked",
        LastLeft = "last-participant-left",
    }
);

wire_enum!(
    /// A participant resource's `status` (spec `participant_enum_status`).
    ParticipantStatus {
        Queued = "queued",
        Connecting = "connecting",
        Ringing = "ringing",
        Connected = "connected",
        Complete = "complete",
        Failed = "failed",
    }
);

wire_enum!(
    /// `DialCallStatus` on a `<Dial action>` request.
    DialCallStatus {
        Completed = "completed",
        Answered = "answered",
        Busy = "busy",
        NoAnswer = "no-answer",
        Failed = "failed",
        Canceled = "canceled",
    }
);

/// Parses Twilio's boolean parameters: `true`/`false` in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
