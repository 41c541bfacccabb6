//! What a scripted caller waits for before hanging up: a moment of its call ("while on hold", "while the
//! specialist rings"), recognised in the journal as it is written, so the hang-up lands at a virtual
//! instant that depends only on the run, never on polling.

use serde::{Deserialize, Serialize};

use crate::ids::CallSid;
use crate::journal::{Entity, Event};
use crate::time::SimDuration;

/// A moment in a caller's call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallMoment {
    /// The caller is on hold: they hear a conference's wait audio or a participant's hold audio.
    Hold,
    /// A call to one of the caller's specialists starts ringing.
    SpecialistRinging,
    /// The caller is bridged with one of their specialists: a started conference or a `<Dial>` bridge
    /// with a specialist's leg.
    Bridged,
    /// The caller is back with an assistant: a media stream opens on their leg after the first.
    Returned,
}

impl CallMoment {
    pub fn as_str(self) -> &'static str {
        match self {
            CallMoment::Hold => "hold",
            CallMoment::SpecialistRinging => "specialist-ringing",
            CallMoment::Bridged => "bridged",
            CallMoment::Returned => "returned",
        }
    }
}

/// What happens when a watched moment comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// The caller hangs up.
    HangUp,
    /// The world hands the shell [`crate::world::Effect::Signal`] with this id (a harness restarting its
    /// target at that moment, say).
    Signal(u64),
}

/// A caller who hangs up (or a signal raised) `after` the first time their call reaches `moment`.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    pub call: CallSid,
    pub moment: CallMoment,
    pub after: SimDuration,
    pub then: Then,
    /// The numbers of the caller's specialists (for `specialist-ringing` and `bridged`).
    pub specialists: Vec<String>,
    /// Legs to the specialists seen so far.
    specialist_legs: Vec<CallSid>,
    /// Media streams the caller's leg has heard.
    streams: u32,
    fired: bool,
}

impl Watch {
    pub fn new(call: CallSid, moment: CallMoment, after: SimDuration, specialists: Vec<String>) -> Watch {
        Watch {
            call,
            moment,
            after,
            then: Then::HangUp,
            specialists,
            specialist_legs: Vec::new(),
            streams: 0,
            fired: false,
        }
    }

    /// The same watch raising a signal instead of hanging up.
    pub fn signalling(self, id: u64) -> Watch {
        Watch { then: Then::Signal(id), ..self }
    }

    /// Whether it still waits for its moment.
    pub fn armed(&self) -> bool {
        !self.fired
    }

    /// `8.000s after going on hold`, for the journal.
    pub fn describe(&self) -> String {
        let moment = match self.moment {
            CallMoment::Hold => "going on hold",
            CallMoment::SpecialistRinging => "the specialist starts ringing",
            CallMoment::Bridged => "being bridged",
            CallMoment::Returned => "coming back to an assistant",
        };
        format!("{} after {moment}", self.after)
    }

    /// Reads one journal line; `true` the first time it shows the moment.
    pub fn sees(&mut self, event: &Event) -> bool {
        if self.fired {
            return false;
        }
        if let Event::CallCreated { call, to, .. } = event
            && self.specialists.iter().any(|n| n == to)
        {
            self.specialist_legs.push(*call);
        }
        let now = match (self.moment, event) {
            (CallMoment::Hold, Event::Audio { call, hears }) => {
                *call == self.call && (hears.starts_with("wait ") || hears.starts_with("hold "))
            }
            (CallMoment::SpecialistRinging, Event::Transition { entity: Entity::Call(call), to, .. }) => {
                to == "ringing" && self.specialist_legs.contains(call)
            }
            (CallMoment::Bridged, Event::Audio { call, hears }) => {
                *call == self.call
                    && (hears.starts_with("conference ") || hears.starts_with("bridged "))
                    && self.specialist_legs.iter().any(|leg| hears.contains(&leg.to_string()))
            }
            (CallMoment::Returned, Event::Audio { call, hears }) if *call == self.call => {
                if hears.starts_with("stream ") {
                    self.streams += 1;
                }
                self.streams >= 2 && hears.starts_with("stream ")
            }
            _ => false,
        };
        self.fired = now;
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(call: CallSid, hears: &str) -> Event {
        Event::Audio { call, hears: hears.into() }
    }

    #[test]
    fn hold_is_the_first_wait_or_hold_audio_on_the_callers_leg() {
        let (caller, other) = (CallSid::from_u128(1), CallSid::from_u128(2));
        let mut w = Watch::new(caller, CallMoment::Hold, SimDuration::ZERO, Vec::new());
        assert!(!w.sees(&audio(caller, "stream wss://x")));
        assert!(!w.sees(&audio(other, "wait http://o/hold")));
        assert!(w.sees(&audio(caller, "wait http://o/hold")));
        assert!(!w.sees(&audio(caller, "hold http://o/hold")), "fires once");
    }

    #[test]
    fn specialist_ringing_needs_a_leg_to_one_of_the_callers_specialists() {
        let (caller, leg, stranger) = (CallSid::from_u128(1), CallSid::from_u128(2), CallSid::from_u128(3));
        let mut w =
            Watch::new(caller, CallMoment::SpecialistRinging, SimDuration::ZERO, vec!["+1555".into()]);
        let created = |call, to: &str| Event::CallCreated {
            call,
            direction: "outbound-api".into(),
            from: "+1".into(),
            to: to.into(),
            state: "queued".into(),
            cause: "REST create".into(),
        };
        let ringing = |call| Event::Transition {
            entity: Entity::Call(call),
            from: "initiated".into(),
            to: "ringing".into(),
            cause: None,
        };
        w.sees(&created(stranger, "+1999"));
        w.sees(&created(leg, "+1555"));
        assert!(!w.sees(&ringing(stranger)));
        assert!(w.sees(&ringing(leg)));
    }

    #[test]
    fn returned_is_the_second_stream_and_bridged_names_a_specialist_leg() {
        let (caller, leg) = (CallSid::from_u128(1), CallSid::from_u128(2));
        let mut back = Watch::new(caller, CallMoment::Returned, SimDuration::ZERO, Vec::new());
        assert!(!back.sees(&audio(caller, "stream wss://a")));
        assert!(!back.sees(&audio(caller, "wait play x")));
        assert!(back.sees(&audio(caller, "stream wss://b")));
        let mut bridged = Watch::new(caller, CallMoment::Bridged, SimDuration::ZERO, vec!["+1555".into()]);
        assert!(!bridged.sees(&audio(caller, &format!("conference CF1 with {leg}"))), "not a specialist yet");
        bridged.sees(&Event::CallCreated {
            call: leg,
            direction: "outbound-api".into(),
            from: "+1".into(),
            to: "+1555".into(),
            state: "queued".into(),
            cause: "REST create".into(),
        });
        assert!(bridged.sees(&audio(caller, &format!("conference CF1 with {leg}"))));
    }
}
