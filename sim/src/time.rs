//! Virtual time: instants and durations of the simulated world, and how they are written on the wire.
//!
//! A run's time starts at zero. Wire formats that need a calendar date (Twilio's RFC 2822 dates, Vapi's
//! ISO 8601 timestamps) add the run's [`Epoch`], which is fixed for deterministic runs and taken from the
//! wall clock (by the caller, never by `sim`) for real-time runs.

use std::fmt;
use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

/// A point in simulated time: microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimInstant(u64);

/// A span of simulated time, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimDuration(u64);

impl SimInstant {
    /// The start of every run.
    pub const ZERO: SimInstant = SimInstant(0);

    pub const fn from_micros(us: u64) -> Self {
        SimInstant(us)
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimInstant) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us)
    }

    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * 1_000)
    }

    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * 1_000_000)
    }

    /// Whole-second durations from a float, as scenario files write them (`ring_s = 2.5`).
    pub fn from_secs_f64(s: f64) -> Self {
        SimDuration((s.max(0.0) * 1_000_000.0).round() as u64)
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }

    /// Whole seconds, rounded down, as Twilio reports durations.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl Add<SimDuration> for SimInstant {
    type Output = SimInstant;
    fn add(self, d: SimDuration) -> SimInstant {
        SimInstant(self.0.saturating_add(d.0))
    }
}

impl Sub<SimInstant> for SimInstant {
    type Output = SimDuration;
    fn sub(self, earlier: SimInstant) -> SimDuration {
        self.saturating_since(earlier)
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl fmt::Display for SimInstant {
    /// `12.345s`: seconds with millisecond precision, the way the timeline prints instants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1_000_000, (self.0 / 1_000) % 1_000)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1_000_000, (self.0 / 1_000) % 1_000)
    }
}

/// The calendar instant that corresponds to [`SimInstant::ZERO`], in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch(pub i64);

impl Default for Epoch {
    /// 2026-01-01T00:00:00Z: a fixed date so deterministic journals never change with the day they ran.
    fn default() -> Self {
        Epoch(1_767_225_600)
    }
}

impl Epoch {
    fn datetime(self, at: SimInstant) -> time::OffsetDateTime {
        let nanos = i128::from(self.0) * 1_000_000_000 + i128::from(at.as_micros()) * 1_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// Twilio's resource and callback date format: `Tue, 31 Aug 2010 20:36:28 +0000`.
    pub fn rfc2822(self, at: SimInstant) -> String {
        self.datetime(at)
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_else(|_| String::from("Thu, 01 Jan 1970 00:00:00 +0000"))
    }

    /// ISO 8601 with milliseconds and `Z`, as Vapi writes `createdAt`: `2026-01-01T00:00:01.250Z`.
    pub fn iso8601(self, at: SimInstant) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.datetime(at).format(FORMAT).unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000Z"))
    }

    /// Unix milliseconds, as Vapi's message `timestamp`.
    pub fn unix_millis(self, at: SimInstant) -> i64 {
        self.0 * 1_000 + (at.as_micros() / 1_000) as i64
    }

    /// The calendar date `YYYY-MM-DD`, as Twilio's list filters compare dates.
    pub fn date(self, at: SimInstant) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
            time::macros::format_description!("[year]-[month]-[day]");
        self.datetime(at).format(FORMAT).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_twilio_dates_in_rfc2822_with_a_numeric_offset() {
        let epoch = Epoch::default();
        assert_eq!(epoch.rfc2822(SimInstant::ZERO), "Thu, 01 Jan 2026 00:00:00 +0000");
        let later = SimInstant::ZERO + SimDuration::from_secs(3_661);
        assert_eq!(epoch.rfc2822(later), "Thu, 01 Jan 2026 01:01:01 +0000");
    }

    #[test]
    fn renders_vapi_timestamps_with_milliseconds() {
        let at = SimInstant::ZERO + SimDuration::from_millis(1_250);
        assert_eq!(Epoch::default().iso8601(at), "2026-01-01T00:00:01.250Z");
        assert_eq!(Epoch::default().unix_millis(at), 1_767_225_601_250);
    }

    #[test]
    fn prints_instants_as_seconds_with_millis() {
        assert_eq!(SimInstant::from_micros(12_345_678).to_string(), "12.345s");
    }
}
