//! The call-status state machine of one Twilio call leg, pure: input in, new state and callbacks out.
//!
//! Twilio: REST calls go `queued → initiated → ringing → in-progress → completed`; `<Dial>` children skip
//! `queued`; inbound calls start `ringing`. `initiated` is a status-callback value only: while initiated,
//! the resource still reads `queued`. Terminal: `completed`, `busy`, `no-answer`, `failed`, `canceled`.

use crate::twilio::model::{CallEvent, CallStatus};

/// Where a leg is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegState {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Ended(CallStatus),
}

/// What happened to the leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegInput {
    /// Twilio takes the call off the queue and dials.
    Dial,
    /// The far end rings.
    Ring,
    /// The far end (or, for an inbound leg, Twilio) answers.
    Answer,
    /// The attempt or the call ends with this terminal status.
    End(CallStatus),
}

/// A status callback the transition fires: the subscription it belongs to and the `CallStatus` it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub event: CallEvent,
    pub call_status: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal call transition: {input:?} while {state:?}")]
pub struct IllegalTransition {
    pub state: LegState,
    pub input: LegInput,
}

impl LegState {
    /// The `status` the REST resource shows.
    pub fn resource_status(self) -> CallStatus {
        match self {
            LegState::Queued | LegState::Initiated => CallStatus::Queued,
            LegState::Ringing => CallStatus::Ringing,
            LegState::InProgress => CallStatus::InProgress,
            LegState::Ended(status) => status,
        }
    }

    pub fn is_ended(self) -> bool {
        matches!(self, LegState::Ended(_))
    }

    /// Not yet answered, not yet over.
    pub fn is_pending(self) -> bool {
        matches!(self, LegState::Queued | LegState::Initiated | LegState::Ringing)
    }

    /// The next state and the progress event it reports.
    pub fn step(self, input: LegInput) -> Result<(LegState, Option<Progress>), IllegalTransition> {
        use LegInput as I;
        use LegState as S;
        let progress = |event, call_status| Some(Progress { event, call_status });
        let illegal = IllegalTransition { state: self, input };
        match (self, input) {
            (S::Queued, I::Dial) => Ok((S::Initiated, progress(CallEvent::Initiated, "initiated"))),
            (S::Initiated, I::Ring) => Ok((S::Ringing, progress(CallEvent::Ringing, "ringing"))),
            (S::Initiated | S::Ringing, I::Answer) => {
                Ok((S::InProgress, progress(CallEvent::Answered, "in-progress")))
            }
            (S::Queued | S::Initiated | S::Ringing | S::InProgress, I::End(status)) => {
                if !status.is_terminal() {
                    return Err(illegal);
                }
                // An answered call can only end `completed`; an unanswered one only in a failure status,
                // except inbound calls hung up by TwiML before they were answered (the engine asks for
                // `completed` then, as Twilio reports them).
                if self == S::InProgress && status != CallStatus::Completed {
                    return Err(illegal);
                }
                Ok((S::Ended(status), progress(CallEvent::Completed, status.as_str())))
            }
            _ => Err(illegal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: LegState, inputs: &[LegInput]) -> Result<(LegState, Vec<&'static str>), IllegalTransition> {
        let mut state = start;
        let mut sent = Vec::new();
        for &input in inputs {
            let (next, progress) = state.step(input)?;
            state = next;
            sent.extend(progress.map(|p| p.call_status));
        }
        Ok((state, sent))
    }

    #[test]
    fn an_answered_rest_call_reports_every_progress_event_in_order() {
        let (state, sent) = run(
            LegState::Queued,
            &[LegInput::Dial, LegInput::Ring, LegInput::Answer, LegInput::End(CallStatus::Completed)],
        )
        .expect("legal");
        assert_eq!(state, LegState::Ended(CallStatus::Completed));
        assert_eq!(sent, ["initiated", "ringing", "in-progress", "completed"]);
    }

    #[test]
    fn each_failure_outcome_ends_an_unanswered_leg_with_its_own_status() {
        for status in [CallStatus::Busy, CallStatus::NoAnswer, CallStatus::Failed, CallStatus::Canceled] {
            let (state, sent) =
                run(LegState::Queued, &[LegInput::Dial, LegInput::End(status)]).expect("legal");
            assert_eq!(state, LegState::Ended(status));
            assert_eq!(sent, ["initiated", status.as_str()]);
        }
    }

    #[test]
    fn an_answered_leg_cannot_end_busy_and_an_ended_leg_cannot_move() {
        assert!(LegState::InProgress.step(LegInput::End(CallStatus::Busy)).is_err());
        let ended = LegState::Ended(CallStatus::Completed);
        for input in [LegInput::Dial, LegInput::Ring, LegInput::Answer, LegInput::End(CallStatus::Completed)]
        {
            assert!(ended.step(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn the_resource_reads_queued_while_initiated() {
        assert_eq!(LegState::Initiated.resource_status(), CallStatus::Queued);
        assert_eq!(LegState::Ringing.resource_status(), CallStatus::Ringing);
    }

    #[test]
    fn ringing_cannot_go_back_to_initiated_nor_end_with_a_live_status() {
        assert!(LegState::Ringing.step(LegInput::Dial).is_err());
        assert!(LegState::Ringing.step(LegInput::Ring).is_err());
        assert!(LegState::Ringing.step(LegInput::End(CallStatus::Ringing)).is_err());
    }
}
