//! Answering machine detection: what Twilio concludes about who picked up, and how long it takes.
//!
//! Pure. The timings are the world's configurable defaults: Twilio documents the thresholds
//! (`MachineDetectionSpeechThreshold` 2400 ms, `…SpeechEndThreshold` 1200 ms, timeout 30 s) but not how
//! long a real greeting takes to classify.

use crate::phone::Answerer;
use crate::time::SimDuration;
use crate::twilio::model::{AmdMode, AnsweredBy};
use crate::world::TwilioDefaults;

/// Silence after a greeting without a beep before `DetectMessageEnd` gives up waiting for one.
const END_SILENCE: SimDuration = SimDuration::from_millis(2_000);
/// Time after the end of a greeting for the beep to be heard.
const BEEP: SimDuration = SimDuration::from_millis(500);

/// `AnsweredBy` and `MachineDetectionDuration` for a call answered by `answerer`.
pub fn detect(
    answerer: Answerer,
    mode: AmdMode,
    timeout: SimDuration,
    defaults: &TwilioDefaults,
) -> (AnsweredBy, SimDuration) {
    let (by, after) = match answerer {
        Answerer::Human => (AnsweredBy::Human, SimDuration::from_secs_f64(defaults.amd_human_s)),
        Answerer::Fax => (AnsweredBy::Fax, SimDuration::from_secs_f64(defaults.amd_fax_s)),
        Answerer::Machine { greeting, beep } => match mode {
            AmdMode::Enable => {
                (AnsweredBy::MachineStart, SimDuration::from_secs_f64(defaults.amd_machine_start_s))
            }
            AmdMode::DetectMessageEnd if beep => (AnsweredBy::MachineEndBeep, greeting + BEEP),
            AmdMode::DetectMessageEnd => (AnsweredBy::MachineEndSilence, greeting + END_SILENCE),
        },
    };
    // Twilio: `unknown` when MachineDetectionTimeout expires before a decision.
    if after > timeout { (AnsweredBy::Unknown, timeout) } else { (by, after) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> TwilioDefaults {
        TwilioDefaults::default()
    }

    #[test]
    fn enable_reports_machine_start_before_the_greeting_ends() {
        let machine = Answerer::Machine { greeting: SimDuration::from_secs(10), beep: true };
        let (by, after) = detect(machine, AmdMode::Enable, SimDuration::from_secs(30), &d());
        assert_eq!(by, AnsweredBy::MachineStart);
        assert!(after < SimDuration::from_secs(10));
    }

    #[test]
    fn detect_message_end_waits_for_the_beep() {
        let machine = Answerer::Machine { greeting: SimDuration::from_secs(10), beep: true };
        let (by, after) = detect(machine, AmdMode::DetectMessageEnd, SimDuration::from_secs(30), &d());
        assert_eq!((by, after), (AnsweredBy::MachineEndBeep, SimDuration::from_millis(10_500)));
        let silent = Answerer::Machine { greeting: SimDuration::from_secs(10), beep: false };
        assert_eq!(
            detect(silent, AmdMode::DetectMessageEnd, SimDuration::from_secs(30), &d()).0,
            AnsweredBy::MachineEndSilence
        );
    }

    #[test]
    fn a_greeting_longer_than_the_timeout_is_unknown_at_the_timeout() {
        let machine = Answerer::Machine { greeting: SimDuration::from_secs(40), beep: true };
        let (by, after) = detect(machine, AmdMode::DetectMessageEnd, SimDuration::from_secs(30), &d());
        assert_eq!((by, after), (AnsweredBy::Unknown, SimDuration::from_secs(30)));
    }

    #[test]
    fn people_and_faxes_are_recognised_in_either_mode() {
        for mode in [AmdMode::Enable, AmdMode::DetectMessageEnd] {
            assert_eq!(detect(Answerer::Human, mode, SimDuration::from_secs(30), &d()).0, AnsweredBy::Human);
            assert_eq!(detect(Answerer::Fax, mode, SimDuration::from_secs(30), &d()).0, AnsweredBy::Fax);
        }
    }
}
