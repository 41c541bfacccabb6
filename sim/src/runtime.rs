//! The async shell around the sans-IO world: it keeps the clock, fires due events, performs effects
//! (webhooks, media streams) and feeds their outcomes back.
//!
//! The same shell runs virtual and real time. In virtual runs the tokio runtime's clock is paused, so
//! sleeping until the next event costs nothing and time jumps straight there once every task is idle;
//! in real runs the clock is tokio's, optionally scaled (`time_scale = 0.1` makes a 30 s ring take 3 s).

use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use tokio::sync::{Notify, mpsc};

use crate::ids::StreamSid;
use crate::time::{SimDuration, SimInstant};
use crate::transport::Transport;
use crate::twilio::stream_client::{self, StreamCommand, StreamStart};
use crate::world::{DeliveryError, Effect, StreamReport, World};

/// The run's clock, read by the shell only.
///
/// This is the one place `sim` observes time: tokio's clock, which the harness pauses for virtual runs.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: tokio::time::Instant,
    /// Real seconds per simulated second.
    scale: f64,
}

impl Clock {
    /// A clock whose zero is now. `scale` is real seconds per simulated second (1.0 for real time).
    pub fn start(scale: f64) -> Clock {
        Clock { origin: tokio::time::Instant::now(), scale: if scale > 0.0 { scale } else { 1.0 } }
    }

    pub fn now(&self) -> SimInstant {
        let real = self.origin.elapsed();
        if self.scale == 1.0 {
            // Exact: a deadline computed by `deadline` reads back as exactly its instant.
            return SimInstant::from_micros(u64::try_from(real.as_micros()).unwrap_or(u64::MAX));
        }
        SimInstant::from_micros((real.as_nanos() as f64 / (self.scale * 1_000.0)) as u64)
    }

    /// The tokio instant at which simulated time reaches `at`; `now()` read then is never before `at`
    /// (a clock that read back a microsecond early would wake the driver for ever at the same instant).
    pub fn deadline(&self, at: SimInstant) -> tokio::time::Instant {
        if self.scale == 1.0 {
            return self.origin + std::time::Duration::from_micros(at.as_micros());
        }
        let real_nanos = (at.as_micros() as f64 * 1_000.0 * self.scale).ceil() as u64 + 1;
        self.origin + std::time::Duration::from_nanos(real_nanos)
    }

    /// A simulated duration in real time.
    pub fn real(&self, d: SimDuration) -> std::time::Duration {
        std::time::Duration::from_secs_f64(d.as_secs_f64() * self.scale)
    }
}

/// The world with its clock, shared by the REST handlers and the driver.
#[derive(Debug)]
pub struct Sim {
    world: Mutex<World>,
    wake: Notify,
    clock: Clock,
    transport: Arc<dyn Transport>,
    streams: Mutex<IndexMap<StreamSid, mpsc::Sender<StreamCommand>>>,
    attach: Mutex<Option<Arc<dyn StreamAttach>>>,
    signals: Mutex<Option<mpsc::UnboundedSender<u64>>>,
}

/// An in-process media-stream server: where `<Connect><Stream>` plugs into a fake that lives in the same
/// process (the fake Vapi), with no socket. It speaks the same channels as the WebSocket client.
pub trait StreamAttach: Send + Sync + std::fmt::Debug + 'static {
    /// Takes the stream if `start.url` is one of this server's; otherwise hands the channels back so the
    /// stream goes over a real WebSocket.
    #[allow(clippy::result_large_err)] // the error returns what was passed in, unchanged
    fn attach(
        &self,
        start: StreamStart,
        commands: mpsc::Receiver<StreamCommand>,
        reports: mpsc::Sender<stream_client::StreamReport>,
    ) -> Result<(), (StreamStart, mpsc::Receiver<StreamCommand>, mpsc::Sender<stream_client::StreamReport>)>;
}

/// A handle to a running simulation.
pub type SharedSim = Arc<Sim>;

impl Sim {
    pub fn new(world: World, clock: Clock, transport: Arc<dyn Transport>) -> SharedSim {
        Arc::new(Sim {
            attach: Mutex::new(None),
            world: Mutex::new(world),
            wake: Notify::new(),
            clock,
            transport,
            streams: Mutex::default(),
            signals: Mutex::new(None),
        })
    }

    /// Locks the world with its clock brought up to date. Keep the guard short: never across an await.
    pub fn world(&self) -> MutexGuard<'_, World> {
        let mut world = self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        world.advance_to(self.clock.now());
        world
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Routes streams whose URL `attach` recognises to it, in process, instead of a WebSocket.
    pub fn set_stream_attach(&self, attach: Arc<dyn StreamAttach>) {
        *self.attach.lock().unwrap_or_else(|p| p.into_inner()) = Some(attach);
    }

    /// The ids of the signals the world raises from now on (watched moments that came), in order; the
    /// id reaches the receiver when the driver performs the effect, at the signal's virtual instant.
    pub fn signals(&self) -> mpsc::UnboundedReceiver<u64> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.signals.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Tells the driver the world changed (new events or effects).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs a closure on the world, then lets the driver perform what it queued.
    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let result = f(&mut self.world());
        self.wake();
        result
    }
}

/// Drives the world until `stop` resolves: fires due events and performs effects.
pub async fn drive(sim: SharedSim, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let (effects, next_due) = {
            let mut world = sim.world();
            world.fire_due();
            (world.take_effects(), world.next_due())
        };
        for effect in effects {
            perform(&sim, effect);
        }
        let sleep = async {
            match next_due {
                Some(at) => tokio::time::sleep_until(sim.clock.deadline(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = sim.wake.notified() => {}
            () = sleep => {}
        }
    }
}

/// Drives a virtual-time world until nothing more can happen or `deadline` passes; returns whether it
/// settled. Requires a paused tokio clock: time then jumps from event to event.
pub async fn run_until_quiet(sim: &SharedSim, deadline: SimInstant) -> bool {
    loop {
        let (effects, next_due, quiet) = {
            let mut world = sim.world();
            world.fire_due();
            let effects = world.take_effects();
            let quiet = effects.is_empty() && world.is_quiescent();
            (effects, world.next_due(), quiet)
        };
        if quiet {
            return true;
        }
        if sim.clock.now() >= deadline {
            return false;
        }
        for effect in effects {
            perform(sim, effect);
        }
        let until = next_due.map_or(deadline, |due| due.min(deadline));
        tokio::select! {
            biased;
            () = sim.wake.notified() => {}
            () = tokio::time::sleep_until(sim.clock.deadline(until)) => {}
        }
    }
}

fn perform(sim: &SharedSim, effect: Effect) {
    match effect {
        Effect::Deliver(delivery) => {
            let sim = Arc::clone(sim);
            tokio::spawn(async move {
                let timeout = sim.clock.real(delivery.timeout);
                let sent = sim.transport.send(delivery.request);
                let outcome = match tokio::time::timeout(timeout, sent).await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(crate::transport::TransportError::Refused(e))) => {
                        Err(DeliveryError::Connect(format!("connection refused: {e}")))
                    }
                    Ok(Err(crate::transport::TransportError::TooLarge { limit })) => {
                        Err(DeliveryError::TooLarge { limit })
                    }
                    Ok(Err(e)) => Err(DeliveryError::Other(e.to_string())),
                    Err(_) => Err(DeliveryError::Timeout),
                };
                sim.with(|w| w.complete_delivery(delivery.id, outcome));
            });
        }
        Effect::OpenStream(open) => {
            let (commands_tx, commands_rx) = mpsc::channel(16);
            let (reports_tx, mut reports_rx) = mpsc::channel(16);
            sim.streams.lock().unwrap_or_else(|p| p.into_inner()).insert(open.stream, commands_tx);
            let start = StreamStart {
                url: open.url,
                account_sid: open.account,
                call_sid: open.call,
                stream_sid: open.stream,
                tracks: vec![stream_client::Track::Inbound],
                custom_parameters: open.parameters,
                bidirectional: open.bidirectional,
            };
            let attach = sim.attach.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let unclaimed = match attach {
                Some(attach) => attach.attach(start, commands_rx, reports_tx).err(),
                None => Some((start, commands_rx, reports_tx)),
            };
            if let Some((start, commands_rx, reports_tx)) = unclaimed {
                let frame =
                    sim.clock.real(SimDuration::from_millis(20)).max(std::time::Duration::from_millis(1));
                tokio::spawn(stream_client::run(start, commands_rx, reports_tx, frame));
            }
            let sim = Arc::clone(sim);
            let stream = open.stream;
            tokio::spawn(async move {
                while let Some(report) = reports_rx.recv().await {
                    let report = match report {
                        stream_client::StreamReport::Connected => Some(StreamReport::Connected),
                        stream_client::StreamReport::Closed { by_server, .. } => {
                            Some(StreamReport::Closed { by_server })
                        }
                        stream_client::StreamReport::Failed(e) => Some(StreamReport::Failed(e)),
                        _ => None,
                    };
                    if let Some(report) = report {
                        sim.with(|w| w.stream_report(stream, report));
                    }
                }
                sim.streams.lock().unwrap_or_else(|p| p.into_inner()).shift_remove(&stream);
            });
        }
        Effect::StopStream(stream) => {
            if let Some(tx) = sim.streams.lock().unwrap_or_else(|p| p.into_inner()).shift_remove(&stream) {
                let _ = tx.try_send(StreamCommand::Stop);
            }
        }
        Effect::Signal(id) => {
            if let Some(signals) = sim.signals.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                // A receiver that is gone no longer cares.
                let _ = signals.send(id);
            }
        }
        Effect::StreamDtmf(stream, digit) => {
            if let Some(tx) = sim.streams.lock().unwrap_or_else(|p| p.into_inner()).get(&stream) {
                let _ = tx.try_send(StreamCommand::Dtmf(digit));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_reads_back_as_its_instant_at_any_scale() {
        for scale in [1.0, 0.1, 0.05, 0.37, 2.5] {
            let clock = Clock::start(scale);
            for micros in [1, 100_000, 5_400_000, 7_600_001, 123_456_789] {
                let at = SimInstant::from_micros(micros);
                tokio::time::sleep_until(clock.deadline(at)).await;
                assert!(clock.now() >= at, "scale {scale}: woke at {} for {at}", clock.now());
            }
        }
    }
}
