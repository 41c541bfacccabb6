//! Test helpers shared by the crates' property tests. It depends on nothing of ringback's, so every crate,
//! the orchestrator included (which must know nothing of `sim`), can take it as a dev-dependency.
//!
//! [`byte_edits`] draws edits of a valid input; [`ByteEdits::apply`] makes the mutated input: the bytes a
//! parser meets when a file is truncated, spliced or hand-edited badly. [`json_value`] draws the JSON values
//! parsers trip on, and [`replace_somewhere`] puts one in place of any value of a real document.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// What one edit does at its place.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Insert a byte.
    Insert,
    /// Delete a run of bytes.
    Delete,
    /// Duplicate a run of bytes in place.
    Duplicate,
    /// Overwrite one byte (or append it past the end).
    Overwrite,
}

/// Edits of a byte string, applied in order.
#[derive(Clone, Debug)]
pub struct ByteEdits(Vec<(Kind, usize, u8, usize)>);

/// One to seven edits, each inserting a byte, deleting or duplicating a run of up to 23 bytes, or
/// overwriting a byte, at any place.
pub fn byte_edits() -> impl Strategy<Value = ByteEdits> {
    let kind =
        prop_oneof![Just(Kind::Insert), Just(Kind::Delete), Just(Kind::Duplicate), Just(Kind::Overwrite)];
    proptest::collection::vec((kind, any::<usize>(), any::<u8>(), 1usize..24), 1..8).prop_map(ByteEdits)
}

impl ByteEdits {
    /// `valid` with the edits made.
    pub fn apply(&self, valid: &[u8]) -> Vec<u8> {
        let mut bytes = valid.to_vec();
        for &(kind, at, byte, len) in &self.0 {
            // Any place from the start to the end, inclusive; shrinking moves it to the start.
            let at = at % (bytes.len() + 1);
            let end = (at + len).min(bytes.len());
            match kind {
                Kind::Insert => bytes.insert(at, byte),
                Kind::Delete => {
                    bytes.drain(at..end);
                }
                Kind::Duplicate => {
                    let run = bytes[at..end].to_vec();
                    bytes.splice(at..at, run);
                }
                Kind::Overwrite if at < bytes.len() => bytes[at] = byte,
                Kind::Overwrite => bytes.push(byte),
            }
        }
        bytes
    }

    /// `valid` with the edits made, as text (bytes that are no longer UTF-8 replaced).
    pub fn apply_to_text(&self, valid: &str) -> String {
        String::from_utf8_lossy(&self.apply(valid.as_bytes())).into_owned()
    }
}

/// Arbitrary JSON, with the values parsers trip on: huge and negative numbers, empty and odd strings,
/// words the vendors' enums use, nested up to three levels.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        "[a-z+0-9:/.<>&{}\"-]{0,12}".prop_map(Value::String),
        prop_oneof![Just("number"), Just("sip"), Just("twilio"), Just("user"), Just("say")]
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-zA-Z]{1,10}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `value` with the value at one of its places (the document itself, or any member or item at any depth)
/// replaced by `replacement`.
pub fn replace_somewhere(value: &mut Value, pick: Index, replacement: Value) {
    fn paths(value: &Value, here: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                // A JSON pointer escapes `~` and `/` in a key (RFC 6901).
                paths(v, format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")), out)
            }),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, v)| paths(v, format!("{here}/{i}"), out))
            }
            _ => {}
        }
        out.push(here);
    }
    let mut all = Vec::new();
    paths(value, String::new(), &mut all);
    if let Some(slot) = value.pointer_mut(&all[pick.index(all.len())]) {
        *slot = replacement;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_edit_changes_the_bytes_as_it_says() {
        let one = |kind, at, byte, len| ByteEdits(vec![(kind, at, byte, len)]);
        assert_eq!(one(Kind::Insert, 1, b'x', 1).apply(b"abc"), b"axbc");
        assert_eq!(one(Kind::Insert, 3, b'x', 1).apply(b"abc"), b"abcx");
        assert_eq!(one(Kind::Delete, 1, 0, 5).apply(b"abc"), b"a");
        assert_eq!(one(Kind::Duplicate, 0, 0, 2).apply(b"abc"), b"ababc");
        assert_eq!(one(Kind::Overwrite, 2, b'z', 1).apply(b"abc"), b"abz");
        assert_eq!(one(Kind::Overwrite, 3, b'z', 1).apply(b"abc"), b"abcz");
        // A place past the end wraps: every drawn number is a place.
        assert_eq!(one(Kind::Insert, 5, b'x', 1).apply(b"abc"), b"axbc");
        let two = ByteEdits(vec![(Kind::Delete, 0, 0, 1), (Kind::Insert, 0, b'q', 1)]);
        assert_eq!(two.apply(b"abc"), b"qbc", "edits apply in order");
    }

    proptest! {
        #[test]
        fn a_replacement_lands_at_one_place_even_under_a_key_with_a_slash(pick in any::<Index>()) {
            let mut value = json!({"a/b": {"c~d": 1}, "e": [2, 3]});
            replace_somewhere(&mut value, pick, json!("X"));
            let text = value.to_string();
            prop_assert!(text == "\"X\"" || text.matches("\"X\"").count() == 1, "{text}");
        }
    }
}
