//! The phone network: scripted phones and what each does with an incoming call.
//!
//! A number that no world file mentions answers as a human after 2 s, so ad-hoc calls (from an SDK, from
//! `ringback serve`) behave like a real phone somebody picks up.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::time::SimDuration;

/// What a phone does when it is called.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Behaviour {
    /// A person picks up after `after_s` seconds of ringing.
    Human {
        #[serde(default = "default_answer_s")]
        after_s: f64,
    },
    /// Voicemail picks up after `after_s`, plays a greeting of `greeting_s` seconds, then (if `beep`) beeps.
    Machine {
        #[serde(default = "default_answer_s")]
        after_s: f64,
        #[serde(default = "default_greeting_s")]
        greeting_s: f64,
        #[serde(default = "default_true")]
        beep: bool,
    },
    /// A fax machine answers after `after_s`.
    Fax {
        #[serde(default = "default_answer_s")]
        after_s: f64,
    },
    /// The line is busy: no ringing, a busy signal.
    Busy,
    /// It rings until the caller gives up (the dialer's timeout).
    NoAnswer,
    /// The number is unreachable: the call fails without ringing.
    Fail,
    /// It rings for `after_s`, then the callee declines.
    Reject {
        #[serde(default = "default_answer_s")]
        after_s: f64,
    },
    /// A person picks up after `after_s`, then hangs up after `talk_s` seconds on the line.
    HangUp {
        #[serde(default = "default_answer_s")]
        after_s: f64,
        talk_s: f64,
    },
}

fn default_answer_s() -> f64 {
    2.0
}

fn default_greeting_s() -> f64 {
    8.0
}

fn default_true() -> bool {
    true
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour::Human { after_s: default_answer_s() }
    }
}

/// Who picked up, as far as the audio is concerned (what answering machine detection would find).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answerer {
    Human,
    Machine { greeting: SimDuration, beep: bool },
    Fax,
}

/// How a dial attempt to a phone plays out, measured from the moment dialing starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// When the phone starts ringing, if it rings at all.
    pub ring_at: Option<SimDuration>,
    pub outcome: PlannedOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlannedOutcome {
    Answer {
        at: SimDuration,
        by: Answerer,
        hang_up_after: Option<SimDuration>,
    },
    Busy {
        at: SimDuration,
    },
    Fail {
        at: SimDuration,
    },
    Decline {
        at: SimDuration,
    },
    /// Rings until the dialer's timeout.
    RingForever,
}

/// Time from dialing to the first ring (or to a busy or failure signal).
pub const SETUP: SimDuration = SimDuration::from_millis(1_000);

impl Behaviour {
    /// The attempt's script. Pure: the same behaviour always plays out the same way.
    pub fn plan(&self) -> Plan {
        let after = |s: f64| SETUP + SimDuration::from_secs_f64(s);
        match *self {
            Behaviour::Human { after_s } => Plan {
                ring_at: Some(SETUP),
                outcome: PlannedOutcome::Answer {
                    at: after(after_s),
                    by: Answerer::Human,
                    hang_up_after: None,
                },
            },
            Behaviour::Machine { after_s, greeting_s, beep } => Plan {
                ring_at: Some(SETUP),
                outcome: PlannedOutcome::Answer {
                    at: after(after_s),
                    by: Answerer::Machine { greeting: SimDuration::from_secs_f64(greeting_s), beep },
                    hang_up_after: None,
                },
            },
            Behaviour::Fax { after_s } => Plan {
                ring_at: Some(SETUP),
                outcome: PlannedOutcome::Answer {
                    at: after(after_s),
                    by: Answerer::Fax,
                    hang_up_after: None,
                },
            },
            Behaviour::Busy => Plan { ring_at: None, outcome: PlannedOutcome::Busy { at: SETUP } },
            Behaviour::NoAnswer => Plan { ring_at: Some(SETUP), outcome: PlannedOutcome::RingForever },
            Behaviour::Fail => Plan { ring_at: None, outcome: PlannedOutcome::Fail { at: SETUP } },
            Behaviour::Reject { after_s } => {
                Plan { ring_at: Some(SETUP), outcome: PlannedOutcome::Decline { at: after(after_s) } }
            }
            Behaviour::HangUp { after_s, talk_s } => Plan {
                ring_at: Some(SETUP),
                outcome: PlannedOutcome::Answer {
                    at: after(after_s),
                    by: Answerer::Human,
                    hang_up_after: Some(SimDuration::from_secs_f64(talk_s)),
                },
            },
        }
    }
}

/// Every phone of the world, by number.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneBook {
    phones: IndexMap<String, Behaviour>,
}

impl PhoneBook {
    pub fn set(&mut self, number: impl Into<String>, behaviour: Behaviour) {
        self.phones.insert(number.into(), behaviour);
    }

    /// The behaviour of `number`; a number nobody configured answers as a human after 2 s.
    pub fn behaviour(&self, number: &str) -> Behaviour {
        self.phones.get(number).cloned().unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Behaviour)> {
        self.phones.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_number_answers_as_a_human_after_two_seconds() {
        let plan = PhoneBook::default().behaviour("+15550001111").plan();
        assert_eq!(plan.ring_at, Some(SETUP));
        assert_eq!(
            plan.outcome,
            PlannedOutcome::Answer {
                at: SimDuration::from_secs(3),
                by: Answerer::Human,
                hang_up_after: None
            }
        );
    }

    #[test]
    fn busy_and_failing_lines_never_ring() {
        assert_eq!(Behaviour::Busy.plan().ring_at, None);
        assert_eq!(Behaviour::Fail.plan().ring_at, None);
    }

    #[test]
    fn behaviours_read_from_toml_with_defaults() {
        let book: PhoneBook = toml::from_str(
            r#"
            "+15550000001" = { answer = "machine", greeting_s = 12 }
            "+15550000002" = { answer = "busy" }
            "+15550000003" = { answer = "hang-up", talk_s = 1.5 }
            "#,
        )
        .expect("valid phone book");
        assert_eq!(
            book.behaviour("+15550000001"),
            Behaviour::Machine { after_s: 2.0, greeting_s: 12.0, beep: true }
        );
        assert_eq!(book.behaviour("+15550000002"), Behaviour::Busy);
        assert_eq!(book.behaviour("+15550000003"), Behaviour::HangUp { after_s: 2.0, talk_s: 1.5 });
    }

    #[test]
    fn an_unknown_behaviour_is_an_error_that_lists_the_choices() {
        let err =
            toml::from_str::<PhoneBook>(r#""+1555" = { answer = "maybe" }"#).expect_err("bad behaviour");
        let msg = err.to_string();
        assert!(msg.contains("unknown variant `maybe`"), "{msg}");
        assert!(msg.contains("human"), "{msg}");
    }
}
