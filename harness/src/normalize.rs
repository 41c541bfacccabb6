//! A journal's timeline with what a snapshot must not pin replaced: ids by their kind and order of first
//! appearance, calendar timestamps by a placeholder, signatures by `[signature]`.
//!
//! Start at [`normalized_timeline`]. Every Twilio SID (`CA`, `CF`, `MZ`, `PN`, `AC` and 32 lower-case hex
//! digits) becomes `CA#1`, `CF#2`, …; every Vapi UUID becomes `uuid#1`, …; every tool call id (`call_` and
//! 24 letters or digits) becomes `toolcall#1`, …. Numbers count per kind, in the order each id first
//! appears in full, so a snapshot survives a change in how many ids a run draws. The timeline cuts long
//! bodies with `…`; an id cut short there is numbered like the full id it starts (`CA#1…`), or `CA#?…`
//! when no single id starts that way.
//!
//! Calendar timestamps move with the world's epoch, so they keep nothing: Vapi's `"timestamp":<unix ms>`
//! becomes `[epoch-ms]`, ISO 8601 instants (`2026-01-01T00:00:05.000Z`) `[iso-8601]`, Twilio's RFC 2822
//! dates (`Thu, 01 Jan 2026 00:00:05 +0000`, plain or form-encoded, and any `Timestamp=` form value)
//! `[rfc-2822]`, also when the timeline cut them short. The virtual time at the start of each line stays:
//! it is deterministic, and the story a snapshot tells.

use std::collections::BTreeMap;

use ringback_sim::journal::Journal;

/// How the timeline marks a body it cut.
const CUT: &str = "…";

/// The Twilio SID prefixes that a run mints or configures.
const SID_KINDS: [&str; 5] = ["CA", "CF", "MZ", "PN", "AC"];

/// A UUID's shape: `x` is a lower-case hex digit.
const UUID: &str = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

/// Date shapes: `9` is a digit, `A` a letter, anything else itself. Each with the label that replaces it
/// and how much of it must be seen before a cut for the cut text to count as that date.
const DATES: [(&str, &str, usize); 4] = [
    ("9999-99-99T99:99:99.999Z", "[iso-8601]", 11),
    ("9999-99-99T99%3A99%3A99.999Z", "[iso-8601]", 11),
    ("AAA, 99 AAA 9999 99:99:99 +9999", "[rfc-2822]", 6),
    ("AAA%2C+99+AAA+9999+99%3A99%3A99+%2B9999", "[rfc-2822]", 8),
];

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `journal`'s timeline, normalized for a snapshot (see the module documentation).
pub fn normalized_timeline(journal: &Journal) -> String {
    normalize(&journal.timeline())
}

/// `text` with ids, calendar timestamps and signatures replaced (see the module documentation).
pub fn normalize(text: &str) -> String {
    let ids = Ids::collect(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let replaced = id_at(rest)
            .map(|id| (ids.name(&id), id.text.len()))
            .or_else(|| timestamp_at(rest))
            .or_else(|| signature_at(rest));
        let len = match replaced {
            Some((replacement, len)) => {
                out.push_str(&replacement);
                len
            }
            None => {
                out.push(c);
                c.len_utf8()
            }
        };
        rest = &rest[len..];
    }
    out
}

/// An id found in the text: its kind's label and the text matched, whole or cut by the timeline.
#[derive(Debug)]
struct Id<'a> {
    label: &'a str,
    text: &'a str,
    whole: bool,
}

/// The whole ids of a text, numbered per kind in order of first appearance.
#[derive(Debug, Default)]
struct Ids {
    numbers: BTreeMap<(String, String), usize>,
    counts: BTreeMap<String, usize>,
}

impl Ids {
    fn collect(text: &str) -> Ids {
        let mut ids = Ids::default();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let len = match id_at(rest) {
                Some(id) => {
                    if id.whole {
                        let key = (id.label.to_owned(), id.text.to_owned());
                        if !ids.numbers.contains_key(&key) {
                            let count = ids.counts.entry(id.label.to_owned()).or_default();
                            *count += 1;
                            ids.numbers.insert(key, *count);
                        }
                    }
                    id.text.len()
                }
                None => c.len_utf8(),
            };
            rest = &rest[len..];
        }
        ids
    }

    /// `CA#3`, or for a cut id the number of the one whole id it starts (`?` if none or several do).
    fn name(&self, id: &Id<'_>) -> String {
        let number = if id.whole {
            self.numbers.get(&(id.label.to_owned(), id.text.to_owned())).copied()
        } else {
            let mut starting = self
                .numbers
                .iter()
                .filter(|((label, text), _)| label == id.label && text.starts_with(id.text));
            match (starting.next(), starting.next()) {
                (Some((_, n)), None) => Some(*n),
                _ => None,
            }
        };
        match number {
            Some(n) => format!("{}#{n}", id.label),
            None => format!("{}#?", id.label),
        }
    }
}

/// The id that starts `s`, if any.
fn id_at(s: &str) -> Option<Id<'_>> {
    sid_at(s).or_else(|| uuid_at(s)).or_else(|| tool_call_at(s))
}

/// `len` bytes of `s` are an id that is whole when it is `full` long and not followed by a letter or
/// digit, or cut when at least `min` long and followed by the timeline's `…`.
fn whole_or_cut<'a>(s: &'a str, label: &'a str, len: usize, full: usize, min: usize) -> Option<Id<'a>> {
    let after = &s[len..];
    let whole = len == full && !after.starts_with(|c: char| c.is_ascii_alphanumeric());
    let cut = len >= min && len < full && after.starts_with(CUT);
    (whole || cut).then(|| Id { label, text: &s[..len], whole })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// A Twilio SID: its two-letter kind and 32 lower-case hex digits.
fn sid_at(s: &str) -> Option<Id<'_>> {
    let label = SID_KINDS.into_iter().find(|k| s.starts_with(k))?;
    let hex = s.bytes().skip(2).take(32).take_while(|b| is_lower_hex(*b)).count();
    whole_or_cut(s, label, 2 + hex, 34, 3)
}

/// A UUID as Vapi writes them, lower-case.
fn uuid_at(s: &str) -> Option<Id<'_>> {
    // Cheap checks first: most of a timeline is not an id.
    if !s.as_bytes().first().is_some_and(|b| is_lower_hex(*b))
        || s.as_bytes().get(8).is_some_and(|b| *b != b'-')
    {
        return None;
    }
    let len = s
        .bytes()
        .zip(UUID.bytes())
        .take_while(|(b, shape)| if *shape == b'x' { is_lower_hex(*b) } else { b == shape })
        .count();
    whole_or_cut(s, "uuid", len, UUID.len(), 9)
}

/// A tool call id as the model provider mints them: `call_` and 24 letters or digits.
fn tool_call_at(s: &str) -> Option<Id<'_>> {
    let tail = s.strip_prefix("call_")?;
    let len = tail.bytes().take(24).take_while(u8::is_ascii_alphanumeric).count();
    whole_or_cut(s, "toolcall", 5 + len, 29, 9)
}

/// A calendar timestamp that starts `s`: its placeholder and how many bytes it replaces.
fn timestamp_at(s: &str) -> Option<(String, usize)> {
    // Vapi: every message's `timestamp` is Unix milliseconds.
    const VAPI: &str = "\"timestamp\":";
    if let Some(tail) = s.strip_prefix(VAPI) {
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            return Some((format!("{VAPI}[epoch-ms]"), VAPI.len() + digits));
        }
    }
    // Twilio: call progress callbacks carry `Timestamp`, an RFC 2822 date, form-encoded.
    const TWILIO: &str = "Timestamp=";
    if let Some(tail) = s.strip_prefix(TWILIO) {
        let value = tail.find(|c: char| c == '&' || c == '…' || c.is_whitespace()).unwrap_or(tail.len());
        if value > 0 {
            return Some((format!("{TWILIO}[rfc-2822]"), TWILIO.len() + value));
        }
    }
    let first = *s.as_bytes().first()?;
    DATES.into_iter().find_map(|(shape, label, min)| {
        let plausible = if shape.starts_with('A') {
            b"MTWFS".contains(&first) && WEEKDAYS.iter().any(|d| s.starts_with(d))
        } else {
            first.is_ascii_digit() && s.as_bytes().get(4) == Some(&b'-')
        };
        if !plausible {
            return None;
        }
        let len = s
            .bytes()
            .zip(shape.bytes())
            .take_while(|(b, shape)| match shape {
                b'9' => b.is_ascii_digit(),
                b'A' => b.is_ascii_alphabetic(),
                _ => b == shape,
            })
            .count();
        let whole = len == shape.len();
        let cut = len >= min && s[len..].starts_with(CUT);
        (whole || cut).then(|| (label.to_owned(), len))
    })
}

/// A signature's value after its name (`X-Twilio-Signature: …`, `signature=…`, `"signature":"…"`).
fn signature_at(s: &str) -> Option<(String, usize)> {
    const NAME: &str = "signature";
    if !s.starts_with(['s', 'S']) {
        return None;
    }
    let name = s.get(..NAME.len()).filter(|n| n.eq_ignore_ascii_case(NAME))?;
    let tail = &s[NAME.len()..];
    let separator = [": ", ":", "=", "\":\"", "\":"]
        .into_iter()
        .filter(|sep| tail.starts_with(sep))
        .max_by_key(|sep| sep.len())?;
    let value = &tail[separator.len()..];
    let len = value.find(|c: char| c.is_whitespace() || "&\",]}…".contains(c)).unwrap_or(value.len());
    (len > 0).then(|| (format!("{name}{separator}[signature]"), NAME.len() + separator.len() + len))
}

#[cfg(test)]
mod tests {
    use ringback_sim::journal::{Entity, Event};
    use ringback_sim::time::{Epoch, SimDuration, SimInstant};

    use super::*;

    const CALL_1: &str = "CA43d321d1ccb2495db25138f2968dc504";
    const CALL_2: &str = "CA8805fd7f487bed24b47efe1fda596acd";
    const ROOM: &str = "CF68d967a661f5487a3b0b77eaf40a4524";
    const VAPI_1: &str = "74327cc8-67fb-4583-a64b-f1f7645c4e61";
    const VAPI_2: &str = "c2636667-0393-448b-947a-bd7c4ef927fa";

    #[test]
    fn numbers_sids_per_kind_in_order_of_first_appearance() {
        let text = format!("{CALL_2} {ROOM}: {CALL_1} joins\n{CALL_1} {CALL_2}.json %3D{CALL_1}%26");
        assert_eq!(normalize(&text), "CA#1 CF#1: CA#2 joins\nCA#2 CA#1.json %3DCA#2%26");
    }

    #[test]
    fn numbers_a_cut_id_like_the_whole_id_it_starts_even_when_that_comes_later() {
        let text = format!("Url=x%3Fcaller%3D{}… ⇒ 201\n{CALL_2} {CALL_1}", &CALL_1[..20]);
        assert_eq!(normalize(&text), "Url=x%3Fcaller%3DCA#2… ⇒ 201\nCA#1 CA#2");
        let uuid = format!("wss%3A%2F%2Fapi.vapi.ai%2F{}… {VAPI_1} {VAPI_2}", &VAPI_2[..24]);
        assert_eq!(normalize(&uuid), "wss%3A%2F%2Fapi.vapi.ai%2Fuuid#2… uuid#1 uuid#2");
    }

    #[test]
    fn marks_a_cut_id_that_starts_no_single_whole_id_with_a_question_mark() {
        assert_eq!(normalize("CA4… and CA43d3…"), "CA#?… and CA#?…");
        let text = format!("{CALL_1} CA8805f… {CALL_2} CA…");
        assert_eq!(normalize(&text), "CA#1 CA#2… CA#2 CA…");
    }

    #[test]
    fn leaves_text_that_only_looks_like_an_id() {
        for text in [
            "CA43d321d1ccb2495db25138f2968dc504ff",
            "CAFE 43d321d1 ApiVersion=2010-04-01",
            "CA43d321d1ccb2495db2513 then more",
            "\"parent_call_sid\":null call_sid…",
            "ACCEPTED 00000000-0000",
        ] {
            assert_eq!(normalize(text), text);
        }
    }

    #[test]
    fn numbers_vapi_uuids_and_tool_call_ids() {
        let text = format!(
            "vapi-call {VAPI_1} none → queued\n{{\"id\":\"{VAPI_2}\",\"assistantId\":\"{VAPI_1}\"}} \
             {{\"toolCallId\":\"call_ky93MWFbUwmFuVlHspoTzDAA\"}} \"id\":\"call_ky93MWFb…"
        );
        assert_eq!(
            normalize(&text),
            "vapi-call uuid#1 none → queued\n{\"id\":\"uuid#2\",\"assistantId\":\"uuid#1\"} \
             {\"toolCallId\":\"toolcall#1\"} \"id\":\"toolcall#1…"
        );
    }

    #[test]
    fn keeps_the_virtual_time_column_and_the_sequence_numbers() {
        let text = "   44.550s #77    call CA43d321d1ccb2495db25138f2968dc504 in-progress → completed\n";
        assert_eq!(normalize(text), "   44.550s #77    call CA#1 in-progress → completed\n");
    }

    #[test]
    fn replaces_calendar_timestamps_whole_or_cut() {
        let cases = [
            (
                r#"{"message":{"timestamp":1767225605000,"type":"x"}}"#,
                r#"{"message":{"timestamp":[epoch-ms],"type":"x"}}"#,
            ),
            (r#"{"timestamp":17672…"#, r#"{"timestamp":[epoch-ms]…"#),
            (r#""createdAt":"2026-01-01T00:00:07.900Z","u…"#, r#""createdAt":"[iso-8601]","u…"#),
            (r#""startedAt":"2026-01-01T00:0…"#, r#""startedAt":"[iso-8601]…"#),
            (r#""date_created":"Thu, 01 Jan 2026 00:00:06 +0000","#, r#""date_created":"[rfc-2822]","#),
            (r#""date_updated":"Thu, 01 Ja…"#, r#""date_updated":"[rfc-2822]…"#),
            ("&Timestamp=Thu%2C+01+Jan+2026+00%3A00%3A05+%2B0000&X=1", "&Timestamp=[rfc-2822]&X=1"),
            ("&Timestamp=Thu%2C+01…", "&Timestamp=[rfc-2822]…"),
            ("StartTime=Thu%2C+01+Jan+2026+00%3A00%3A05+%2B0000", "StartTime=[rfc-2822]"),
            ("ApiVersion=2010-04-01&Called=%2B15550000100", "ApiVersion=2010-04-01&Called=%2B15550000100"),
            (
                r#"{"timestamp":"5","chunk":"1"} Thursday, 1 Jan"#,
                r#"{"timestamp":"5","chunk":"1"} Thursday, 1 Jan"#,
            ),
        ];
        for (text, normalized) in cases {
            assert_eq!(normalize(text), normalized, "{text}");
        }
    }

    #[test]
    fn a_timeline_normalizes_the_same_whatever_the_epoch() {
        let render = |epoch: Epoch| {
            let at = SimInstant::ZERO + SimDuration::from_millis(5_250);
            let form: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("CallSid", CALL_1)
                .append_pair("Timestamp", &epoch.rfc2822(at))
                .finish();
            format!(
                "    5.250s #3     {{\"timestamp\":{},\"createdAt\":\"{}\"}} {form} {{\"date_created\":\"{}\"}}\n",
                epoch.unix_millis(at),
                epoch.iso8601(at),
                epoch.rfc2822(at),
            )
        };
        let (before, after) = (render(Epoch::default()), render(Epoch(1_900_000_000)));
        assert_ne!(before, after);
        assert_eq!(normalize(&before), normalize(&after));
        assert_eq!(
            normalize(&before),
            "    5.250s #3     {\"timestamp\":[epoch-ms],\"createdAt\":\"[iso-8601]\"} CallSid=CA#1&Timestamp=[rfc-2822] {\"date_created\":\"[rfc-2822]\"}\n"
        );
    }

    #[test]
    fn redacts_signatures_but_not_a_fault_that_names_one() {
        let cases = [
            ("X-Twilio-Signature: 3dU0c4QF2tFWg+cnMzM/Xy0dbyo= next", "X-Twilio-Signature: [signature] next"),
            (r#"{"signature":"abc123","x":1}"#, r#"{"signature":"[signature]","x":1}"#),
            ("x-vapi-signature=abc&y=2", "x-vapi-signature=[signature]&y=2"),
            (
                "[forged: wrong X-Twilio-Signature] twilio → target",
                "[forged: wrong X-Twilio-Signature] twilio → target",
            ),
        ];
        for (text, normalized) in cases {
            assert_eq!(normalize(text), normalized, "{text}");
        }
    }

    #[test]
    fn normalizes_a_journal_line_by_line() {
        let mut journal = Journal::new();
        let sid = |s: &str| s.parse().expect("a call sid");
        let entity = Entity::Call(sid(CALL_2));
        journal.transition(
            SimInstant::from_micros(7_900_000),
            entity,
            "initiated",
            "busy",
            Some("the far end"),
        );
        journal
            .record(SimInstant::from_micros(7_900_000), Event::Says { call: sid(CALL_1), text: "hi".into() });
        assert_eq!(
            normalized_timeline(&journal),
            "    7.900s #1     call CA#1 initiated → busy (the far end)\n    7.900s #2     call CA#2 says: hi\n"
        );
    }
}
