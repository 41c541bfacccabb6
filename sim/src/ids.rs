//! Identifiers: Twilio SIDs as validated newtypes, and their deterministic generation.
//!
//! A Twilio SID is a two-letter prefix and 32 hex digits (`CA` + 32 hex for a call). The spec's patterns
//! accept either case; the fake always writes lower case, as Twilio does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rng::SimRng;

/// The input was not a SID of the expected kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a {kind} SID: expected `{prefix}` followed by 32 hex digits")]
pub struct InvalidSid {
    pub input: String,
    pub kind: &'static str,
    pub prefix: &'static str,
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// The SID whose 32 hex digits are `value`.
            pub const fn from_u128(value: u128) -> Self {
                $name(value)
            }

            pub const fn as_u128(self) -> u128 {
                self.0
            }

            /// A fresh SID drawn from `rng`.
            pub fn generate(rng: &mut SimRng) -> Self {
                $name(rng.next_u128())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{:032x}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidSid;
            fn from_str(s: &str) -> Result<Self, InvalidSid> {
                parse_sid(s, $prefix).map($name).ok_or_else(|| InvalidSid {
                    input: s.chars().take(64).collect(),
                    kind: $kind,
                    prefix: $prefix,
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn parse_sid(s: &str, prefix: &str) -> Option<u128> {
    let rest = s.strip_prefix(prefix)?;
    if rest.len() != 32 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(rest, 16).ok()
}

sid_type!(
    /// An account (`AC…`): the user of the Basic auth pair and the owner of numbers and calls.
    AccountSid, "AC", "account"
);
sid_type!(
    /// A call leg (`CA…`).
    CallSid, "CA", "call"
);
sid_type!(
    /// A conference (`CF…`).
    ConferenceSid, "CF", "conference"
);
sid_type!(
    /// An incoming phone number owned by an account (`PN…`).
    PhoneNumberSid, "PN", "phone number"
);
sid_type!(
    /// A media stream (`MZ…`).
    StreamSid, "MZ", "stream"
);
sid_type!(
    /// A notification: a webhook or TwiML error logged on a call (`NO…`).
    NotificationSid, "NO", "notification"
);

/// Mints SIDs for one run from its own random sub-stream, so SIDs are stable for a seed.
#[derive(Clone, Debug)]
pub struct SidMint {
    rng: SimRng,
}

impl SidMint {
    pub fn new(rng: SimRng) -> Self {
        SidMint { rng }
    }

    pub fn call(&mut self) -> CallSid {
        CallSid::generate(&mut self.rng)
    }

    pub fn conference(&mut self) -> ConferenceSid {
        ConferenceSid::generate(&mut self.rng)
    }

    pub fn phone_number(&mut self) -> PhoneNumberSid {
        PhoneNumberSid::generate(&mut self.rng)
    }

    pub fn stream(&mut self) -> StreamSid {
        StreamSid::generate(&mut self.rng)
    }

    pub fn notification(&mut self) -> NotificationSid {
        NotificationSid::generate(&mut self.rng)
    }

    /// A random 128-bit value for tokens that are not SIDs (idempotency tokens, UUIDs).
    pub fn raw(&mut self) -> u128 {
        self.rng.next_u128()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sids_round_trip_through_their_text_form() {
        let sid = CallSid::from_u128(0xabc);
        assert_eq!(sid.to_string(), "CA00000000000000000000000000000abc");
        assert_eq!(sid.to_string().parse::<CallSid>(), Ok(sid));
    }

    #[test]
    fn accepts_upper_case_hex_as_the_spec_pattern_does() {
        let sid: CallSid = "CAABCDEF0123456789ABCDEF0123456789".parse().expect("valid sid");
        assert_eq!(sid.to_string(), "CAabcdef0123456789abcdef0123456789");
    }

    #[test]
    fn rejects_wrong_prefix_and_length_with_a_message_that_says_what_was_expected() {
        let err = "CF00000000000000000000000000000abc".parse::<CallSid>().expect_err("wrong prefix");
        assert_eq!(
            err.to_string(),
            "`CF00000000000000000000000000000abc` is not a call SID: expected `CA` followed by 32 hex digits"
        );
        assert!("CA123".parse::<CallSid>().is_err());
        assert!("CAzz000000000000000000000000000abc".parse::<CallSid>().is_err());
    }
}
