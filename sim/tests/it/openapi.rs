//! A small validator for the subset of OpenAPI 3.0 that Twilio's and Vapi's specs use, with the strictness
//! each needs (`Options`). `spec.rs` and `vapi_spec.rs` hold the two dialects.
//!
//! Supported: `$ref` to `#/components/schemas/…`, `allOf`, `oneOf` and `anyOf` (a `discriminator` with a
//! `mapping`, or a property whose `enum`s tell the branches apart, picks one branch; else the value must
//! fit at least one branch), `enum`, `nullable`, `type`, `format` (`date-time`, `date-time-rfc-2822`,
//! `uuid`, `uri`, `uri-map`; other formats are ignored), `minimum`/`maximum`, `minLength`/`maxLength`,
//! `pattern` (anchored patterns of literals, classes and quantifiers; other patterns are skipped),
//! `items`, `properties`, `required` and `additionalProperties`. Neither spec uses `type` arrays, `not` or `exclusiveMinimum`; a `type` the
//! validator does not know is reported rather than ignored.
//!
//! `oneOf` is checked as `anyOf`. Vapi's spec is generated from TypeScript unions, which are not
//! exclusive, and with unlisted keys allowed two branches can both fit: `UserMessage` and `BotMessage`
//! have the same properties, their `role` untyped. (Twilio's schemas have no unions.)
//!
//! Every error is one line: the JSON path (`$.message.call.status`), then what was expected.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// How an object's keys are checked against its schema's `properties`.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    /// Exactly the listed properties, each one written (null when unset). `required` adds nothing.
    Exact,
    /// The `required` properties are present; other listed properties may be left out; unlisted keys
    /// are ignored.
    Open,
    /// As `Open`, but an unlisted key is an error unless `Component.key` is in `known`, the allowlist of
    /// undocumented keys the real service writes. `Component` is the nearest `$ref`'d schema's name.
    Closed { known: &'a [&'a str] },
}

/// The dialect of a spec: how strict the validator is where the spec and the real service disagree.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// How object keys are checked.
    pub keys: Keys<'a>,
    /// Accept `null` where a property is a bare `$ref` (as if `nullable` were set).
    pub null_for_bare_ref: bool,
    /// Skip the `uri` format, `pattern`, `minLength` and `maxLength` checks on the empty string.
    pub empty_strings_unchecked: bool,
}

/// A parsed OpenAPI document and the dialect to validate against it.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'s> {
    doc: &'s Value,
    options: Options<'s>,
}

impl<'s> Spec<'s> {
    pub fn new(doc: &'s Value, options: Options<'s>) -> Self {
        Self { doc, options }
    }

    /// Whether the spec has `method` (any case) on `path_template` (e.g. `/call/{id}`).
    pub fn operation_exists(&self, method: &str, path_template: &str) -> bool {
        self.doc["paths"][path_template][method.to_ascii_lowercase()].is_object()
    }

    /// The schema `name` in `components.schemas`.
    pub fn component(&self, name: &str) -> Option<&'s Value> {
        self.doc["components"]["schemas"].get(name)
    }

    /// The JSON body schema of `method path_template → status`: `Ok(None)` when the spec documents that
    /// response without a body, `Err` when it does not document it at all.
    pub fn response_schema(
        &self,
        method: &str,
        path_template: &str,
        status: u16,
    ) -> Result<Option<&'s Value>, String> {
        if !self.operation_exists(method, path_template) {
            return Err(format!("the spec has no operation {method} {path_template}"));
        }
        let response =
            &self.doc["paths"][path_template][method.to_ascii_lowercase()]["responses"][status.to_string()];
        if !response.is_object() {
            return Err(format!("the spec has no {status} response for {method} {path_template}"));
        }
        Ok(response["content"]["application/json"].get("schema"))
    }

    /// Validates a response body against the schema the spec gives for `method path_template → status`.
    /// A response without content in the spec (204) expects `Value::Null`.
    pub fn validate_response(
        &self,
        method: &str,
        path_template: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), Vec<String>> {
        match self.response_schema(method, path_template, status).map_err(|e| vec![e])? {
            Some(schema) => self.validate(schema, body),
            None if body.is_null() => Ok(()),
            None => Err(vec![format!("{method} {path_template} → {status} has no body, but one was given")]),
        }
    }

    /// Validates `value` against the component schema `name` (e.g. `Call`).
    pub fn validate_component(&self, name: &str, value: &Value) -> Result<(), Vec<String>> {
        if self.component(name).is_none() {
            return Err(vec![format!("the spec has no component schema `{name}`")]);
        }
        let mut errors = Vec::new();
        self.check_ref(&format!("#/components/schemas/{name}"), value, At::root(), &mut errors);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Validates `value` against `schema`, which may `$ref` into the spec's components.
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        self.check(schema, value, At::root(), &mut errors);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// `(name, schema)` of a `#/components/schemas/name` reference.
    fn resolve<'r>(&self, reference: &'r str) -> Option<(&'r str, &'s Value)> {
        let name = reference.strip_prefix("#/components/schemas/")?;
        Some((name, self.component(name)?))
    }

    /// Follows `$ref`s to the schema that says something.
    fn deref<'v>(&self, schema: &'v Value) -> &'v Value
    where
        's: 'v,
    {
        match schema["$ref"].as_str().and_then(|r| self.resolve(r)) {
            Some((_, target)) => self.deref(target),
            None => schema,
        }
    }

    fn check_ref(&self, reference: &str, value: &Value, at: At<'_>, errors: &mut Vec<String>) {
        match self.resolve(reference) {
            Some((name, target)) => self.check(target, value, At { component: name, ..at }, errors),
            None => errors.push(format!("{}: cannot resolve {reference}", at.path)),
        }
    }

    fn check(&self, schema: &Value, value: &Value, at: At<'_>, errors: &mut Vec<String>) {
        if value.is_null() && schema["nullable"] == Value::Bool(true) {
            return;
        }
        if let Some(reference) = schema["$ref"].as_str() {
            if !(value.is_null() && self.options.null_for_bare_ref) {
                self.check_ref(reference, value, at, errors);
            }
            return;
        }
        // An untyped schema (`{}`, or only `allOf`/`oneOf`) leaves null to its members.
        if value.is_null() && schema.get("type").is_some() {
            errors.push(format!("{}: null, but the schema is not nullable", at.path));
            return;
        }
        if !self.check_type(schema, value, at, errors) {
            return;
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            errors.push(format!("{}: {} is not one of {}", at.path, brief(value), brief_list(allowed)));
        }
        match value {
            Value::String(s) => self.check_string(schema, s, at, errors),
            Value::Number(n) => check_bounds(schema, n, at, errors),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, at.child(&format!("{}[{i}]", at.path)), errors);
                    }
                }
            }
            Value::Object(object) => self.check_object(schema, object, at, errors),
            Value::Null | Value::Bool(_) => {}
        }
        if let Some(members) = schema["allOf"].as_array() {
            // The members see the whole object; its keys are checked here, against all their properties.
            for member in members {
                self.check(member, value, At { keys_checked_above: true, ..at }, errors);
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(branches) = schema[keyword].as_array() {
                self.check_union(keyword, schema, branches, value, at, errors);
            }
        }
    }

    /// Whether `value` has the schema's `type`; reports it when not.
    fn check_type(&self, schema: &Value, value: &Value, at: At<'_>, errors: &mut Vec<String>) -> bool {
        let fits = match schema.get("type") {
            None => true,
            Some(Value::String(t)) => match t.as_str() {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "object" => value.is_object(),
                "array" => value.is_array(),
                other => {
                    errors.push(format!("{}: the validator does not know type `{other}`", at.path));
                    true
                }
            },
            Some(other) => {
                errors.push(format!("{}: the validator does not understand `type: {other}`", at.path));
                true
            }
        };
        if !fits {
            errors.push(format!("{}: expected {}, got {}", at.path, schema["type"], brief(value)));
        }
        fits
    }

    fn check_string(&self, schema: &Value, s: &str, at: At<'_>, errors: &mut Vec<String>) {
        let unchecked = s.is_empty() && self.options.empty_strings_unchecked;
        let shown = brief_str(s);
        let path = at.path;
        match schema["format"].as_str() {
            Some("date-time") if !is_rfc3339(s) => {
                errors.push(format!(
                    "{path}: `{shown}` is not an RFC 3339 date-time like `2026-01-01T00:00:05.000Z`"
                ));
            }
            Some("date-time-rfc-2822") if !is_rfc2822(s) => {
                errors.push(format!(
                    "{path}: `{shown}` is not an RFC 2822 date like `Tue, 31 Aug 2010 20:36:28 +0000`"
                ));
            }
            Some("uuid") if !is_uuid(s) => errors.push(format!("{path}: `{shown}` is not a UUID")),
            Some("uri") if !unchecked && !is_uri(s) => errors.push(format!("{path}: `{shown}` is not a URI")),
            _ => {}
        }
        if unchecked {
            return;
        }
        let chars = s.chars().count() as u64;
        let (min, max) = (schema["minLength"].as_u64(), schema["maxLength"].as_u64());
        if min.is_some_and(|min| chars < min) || max.is_some_and(|max| chars > max) {
            let bounds = match (min, max) {
                (Some(min), Some(max)) => format!("{min} to {max}"),
                (Some(min), None) => format!("at least {min}"),
                (None, _) => format!("at most {}", max.unwrap_or_default()),
            };
            errors.push(format!("{path}: `{shown}` has {chars} characters, expected {bounds}"));
        }
        if let Some(pattern) = schema["pattern"].as_str()
            && pattern::matches(pattern, s) == Some(false)
        {
            errors.push(format!("{path}: `{shown}` does not match {pattern}"));
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        object: &Map<String, Value>,
        at: At<'_>,
        errors: &mut Vec<String>,
    ) {
        let exact = matches!(self.options.keys, Keys::Exact);
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                match object.get(name) {
                    Some(v) => self.check(property, v, at.child(&format!("{}.{name}", at.path)), errors),
                    None if exact => errors.push(format!(
                        "{}: missing property `{name}` (every listed property is written, null when unset)",
                        at.path
                    )),
                    None => {}
                }
            }
        } else if schema["format"] == "uri-map" {
            for (name, v) in object {
                if !v.as_str().is_some_and(is_uri) {
                    errors.push(format!("{}.{name}: expected a URI string, got {}", at.path, brief(v)));
                }
            }
        }
        if !exact {
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{}: missing required property `{name}`", at.path));
                }
            }
        }
        if !at.keys_checked_above {
            self.check_unlisted_keys(schema, object, at, errors);
        }
    }

    /// Keys the schema (with its `allOf` members) does not list: checked against `additionalProperties`,
    /// or else as `Options::keys` says.
    fn check_unlisted_keys(
        &self,
        schema: &Value,
        object: &Map<String, Value>,
        at: At<'_>,
        errors: &mut Vec<String>,
    ) {
        let additional = schema.get("additionalProperties");
        if schema.get("properties").is_none() && schema.get("allOf").is_none() && additional.is_none() {
            return; // a free-form object, such as `metadata: {type: object}`
        }
        // `None` when a member is a union: which keys it lists depends on the branch.
        let Some(listed) = self.properties(schema) else { return };
        let listed: BTreeSet<&str> = listed.iter().map(|(name, _)| *name).collect();
        // `{allOf: [{$ref: X}]}` is how the spec puts a description on a reference: the keys are X's.
        let owner = match schema["allOf"].as_array().map(Vec::as_slice) {
            Some([only]) if schema.get("properties").is_none() => {
                only["$ref"].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or(at.component)
            }
            _ => at.component,
        };
        for (name, v) in object.iter().filter(|(name, _)| !listed.contains(name.as_str())) {
            let unexpected = match additional {
                Some(Value::Bool(allowed)) => !allowed,
                Some(extra) => {
                    self.check(extra, v, at.child(&format!("{}.{name}", at.path)), errors);
                    false
                }
                None => match self.options.keys {
                    Keys::Exact => true,
                    Keys::Open => false,
                    Keys::Closed { known } => !known.contains(&format!("{owner}.{name}").as_str()),
                },
            };
            if unexpected {
                errors.push(format!("{}: unexpected property `{name}` (not in {owner})", at.path));
            }
        }
    }

    /// Every property `schema` lists, its `allOf` members' included; `None` if a member is a union.
    fn properties<'v>(&self, schema: &'v Value) -> Option<Vec<(&'v str, &'v Value)>>
    where
        's: 'v,
    {
        let schema = self.deref(schema);
        if schema.get("oneOf").is_some() || schema.get("anyOf").is_some() {
            return None;
        }
        let mut all: Vec<(&str, &Value)> =
            schema["properties"].as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v)).collect();
        for member in schema["allOf"].as_array().into_iter().flatten() {
            all.extend(self.properties(member)?);
        }
        Some(all)
    }

    fn check_union(
        &self,
        keyword: &str,
        schema: &Value,
        branches: &[Value],
        value: &Value,
        at: At<'_>,
        errors: &mut Vec<String>,
    ) {
        if let Some(object) = value.as_object() {
            // A discriminator with a mapping names the branch.
            let property = schema["discriminator"]["propertyName"].as_str();
            if let (Some(property), Some(mapping)) =
                (property, schema["discriminator"]["mapping"].as_object())
            {
                let names =
                    || brief_list(&mapping.keys().map(|k| Value::from(k.as_str())).collect::<Vec<_>>());
                match object.get(property) {
                    Some(tag) => match tag.as_str().and_then(|t| mapping.get(t)).and_then(Value::as_str) {
                        Some(reference) => self.check_ref(reference, value, at, errors),
                        None => errors.push(format!(
                            "{}.{property}: {} is not one of {}",
                            at.path,
                            brief(tag),
                            names()
                        )),
                    },
                    None => errors.push(format!(
                        "{}: missing property `{property}`, which selects one of {}",
                        at.path,
                        names()
                    )),
                }
                return;
            }
            // So does a property whose enums tell the branches apart (`type`, `role`, `provider`).
            if let Some(tag) = self.tag(branches)
                && let Some(v) = object.get(tag.property)
            {
                match tag.enums.iter().position(|allowed| allowed.contains(v)) {
                    Some(i) => self.check(&branches[i], value, at, errors),
                    None => {
                        let all: Vec<Value> = tag.enums.iter().flat_map(|e| e.iter().cloned()).collect();
                        errors.push(format!(
                            "{}.{}: {} is not one of {}",
                            at.path,
                            tag.property,
                            brief(v),
                            brief_list(&all)
                        ));
                    }
                }
                return;
            }
        }
        // Otherwise every branch is tried.
        let outcomes: Vec<(String, Vec<String>)> = branches
            .iter()
            .enumerate()
            .map(|(i, branch)| {
                let mut branch_errors = Vec::new();
                self.check(branch, value, at, &mut branch_errors);
                (branch_label(branch, i), branch_errors)
            })
            .collect();
        if outcomes.iter().all(|(_, e)| !e.is_empty()) {
            let why: Vec<String> = outcomes
                .iter()
                .map(|(label, e)| match e.len() {
                    1 => format!("[{label}] {}", e[0]),
                    n => format!("[{label}] {} (+{} more)", e[0], n - 1),
                })
                .collect();
            errors.push(format!("{}: matches no `{keyword}` branch: {}", at.path, why.join("; ")));
        }
    }

    /// The property that tells the union's branches apart: one every branch lists with an `enum`, no two
    /// branches sharing a value. The one with the fewest values wins (`provider` over `model`).
    fn tag<'v>(&self, branches: &'v [Value]) -> Option<Tag<'v>>
    where
        's: 'v,
    {
        let properties: Vec<Vec<(&str, &Value)>> =
            branches.iter().map(|b| self.properties(b)).collect::<Option<_>>()?;
        let first = properties.first()?;
        first
            .iter()
            .filter_map(|(name, _)| {
                let enums: Vec<&[Value]> = properties
                    .iter()
                    .map(|listed| {
                        let (_, schema) = listed.iter().find(|(n, _)| n == name)?;
                        self.deref(schema)["enum"].as_array().map(Vec::as_slice)
                    })
                    .collect::<Option<_>>()?;
                let values: Vec<String> = enums.iter().flat_map(|e| e.iter().map(Value::to_string)).collect();
                let distinct: BTreeSet<&String> = values.iter().collect();
                (distinct.len() == values.len()).then_some(Tag { property: name, enums })
            })
            .min_by_key(|tag| tag.enums.iter().map(|e| e.len()).sum::<usize>())
    }
}

/// A property whose value selects a union branch: `enums[i]` are the values branch `i` accepts.
struct Tag<'v> {
    property: &'v str,
    enums: Vec<&'v [Value]>,
}

/// Where a check happens.
#[derive(Debug, Clone, Copy)]
struct At<'p> {
    /// The JSON path of the value: `$.message.call.status`.
    path: &'p str,
    /// The nearest `$ref`'d component, for messages and `Keys::Closed`.
    component: &'p str,
    /// An enclosing `allOf` checks this object's keys against all its members' properties.
    keys_checked_above: bool,
}

impl<'p> At<'p> {
    fn root() -> Self {
        Self { path: "$", component: "(inline schema)", keys_checked_above: false }
    }

    /// A value inside this one, at `path`.
    fn child(self, path: &'p str) -> Self {
        Self { path, keys_checked_above: false, ..self }
    }
}

/// How a union branch is named in errors: its component, else its type, else its position.
fn branch_label(branch: &Value, i: usize) -> String {
    match (branch["$ref"].as_str(), branch["type"].as_str()) {
        (Some(reference), _) => reference.rsplit('/').next().unwrap_or(reference).to_owned(),
        (None, Some(t)) => format!("#{i} {t}"),
        (None, None) => format!("#{i}"),
    }
}

fn check_bounds(schema: &Value, n: &serde_json::Number, at: At<'_>, errors: &mut Vec<String>) {
    let Some(n) = n.as_f64() else { return };
    if let Some(min) = schema["minimum"].as_f64()
        && n < min
    {
        errors.push(format!("{}: {n} is below the minimum {min}", at.path));
    }
    if let Some(max) = schema["maximum"].as_f64()
        && n > max
    {
        errors.push(format!("{}: {n} is above the maximum {max}", at.path));
    }
}

/// A value as JSON, cut short if long: errors stay one line.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn brief_str(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// An enum's values, the first few of a long one.
fn brief_list(values: &[Value]) -> String {
    const SHOWN: usize = 12;
    let shown: Vec<String> = values.iter().take(SHOWN).map(Value::to_string).collect();
    if values.len() > SHOWN {
        format!("[{}, …] ({} values)", shown.join(", "), values.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}

/// An absolute URI (`scheme://…`) or a path.
fn is_uri(s: &str) -> bool {
    if s.starts_with('/') {
        return true;
    }
    s.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// `2026-01-01T00:00:05.000Z`, `2026-01-01T00:00:05+01:00`.
fn is_rfc3339(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let in_range = |t: &str, max: u32| t.len() == 2 && digits(t) && t.parse::<u32>().is_ok_and(|n| n <= max);
    let Some((date, time)) = s.split_once(['T', 't']) else { return false };
    let date: Vec<&str> = date.split('-').collect();
    let date_ok =
        matches!(date[..], [y, m, d] if y.len() == 4 && digits(y) && in_range(m, 12) && in_range(d, 31));
    let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => return false,
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let clock: Vec<&str> = clock.split(':').collect();
    let clock_ok = matches!(clock[..], [h, m, s] if in_range(h, 23) && in_range(m, 59) && in_range(s, 60))
        && digits(fraction);
    let zone_ok = match zone {
        "Z" | "z" => true,
        offset => {
            matches!(offset[1..].split(':').collect::<Vec<_>>()[..], [h, m] if in_range(h, 23) && in_range(m, 59))
        }
    };
    date_ok && clock_ok && zone_ok
}

/// `Tue, 31 Aug 2010 20:36:28 +0000`.
fn is_rfc2822(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = s.split(' ').collect();
    let [day_name, day, month, year, clock, zone] = parts[..] else { return false };
    let clock: Vec<&str> = clock.split(':').collect();
    DAYS.contains(&day_name)
        && (digits(day, 2) || digits(day, 1))
        && MONTHS.contains(&month)
        && digits(year, 4)
        && clock.len() == 3
        && clock.iter().all(|c| digits(c, 2))
        && (zone.starts_with('+') || zone.starts_with('-'))
        && digits(&zone[1..], 4)
}

/// `123e4567-e89b-12d3-a456-426614174000`, any version.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The regular expressions of `pattern`: enough for the anchored ones the two specs use, such as
/// `^CA[0-9a-fA-F]{32}$` and `/^[a-zA-Z0-9_-]{1,64}$/`.
mod pattern {
    /// One character class with its repetition bounds.
    struct Piece {
        negated: bool,
        ranges: Vec<(char, char)>,
        min: usize,
        max: usize,
    }

    impl Piece {
        fn accepts(&self, c: char) -> bool {
            self.ranges.iter().any(|&(low, high)| (low..=high).contains(&c)) != self.negated
        }
    }

    const DIGITS: [(char, char); 1] = [('0', '9')];
    const WORD: [(char, char); 4] = [('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
    const SPACE: [(char, char); 2] = [(' ', ' '), ('\t', '\r')];

    /// Whether `s` matches `pattern`, or `None` when the pattern is beyond this matcher: unanchored, or
    /// with groups, alternation, lazy quantifiers, `\p{…}` or flags other than `u`. A JavaScript literal
    /// (`/…/u`, as Vapi writes them) is unwrapped first.
    pub fn matches(pattern: &str, s: &str) -> Option<bool> {
        let source = match pattern.strip_prefix('/').and_then(|p| p.rsplit_once('/')) {
            Some((source, "" | "u")) => source,
            Some(_) => return None,
            None => pattern,
        };
        let body = source.strip_prefix('^')?.strip_suffix('$')?;
        let pieces = parse(body)?;
        let chars: Vec<char> = s.chars().collect();
        Some(match_from(&pieces, &chars))
    }

    fn match_from(pieces: &[Piece], s: &[char]) -> bool {
        let Some((first, rest)) = pieces.split_first() else { return s.is_empty() };
        let run = s.iter().take(first.max).take_while(|c| first.accepts(**c)).count();
        run >= first.min && (first.min..=run).rev().any(|n| match_from(rest, &s[n..]))
    }

    fn parse(body: &str) -> Option<Vec<Piece>> {
        let mut chars = body.chars().peekable();
        let mut pieces = Vec::new();
        while let Some(c) = chars.next() {
            let (negated, ranges) = match c {
                '[' => class(&mut chars)?,
                '\\' => escape(chars.next()?)?,
                '.' => (true, vec![('\n', '\n')]),
                '(' | ')' | '|' | '*' | '+' | '?' | '{' | '}' | '^' | '$' => return None,
                c => (false, vec![(c, c)]),
            };
            let (min, max) = quantifier(&mut chars)?;
            pieces.push(Piece { negated, ranges, min, max });
        }
        Some(pieces)
    }

    /// `\d`, `\w`, `\s`, their negations, or an escaped punctuation character.
    fn escape(c: char) -> Option<(bool, Vec<(char, char)>)> {
        Some(match c {
            'd' | 'D' => (c == 'D', DIGITS.to_vec()),
            'w' | 'W' => (c == 'W', WORD.to_vec()),
            's' | 'S' => (c == 'S', SPACE.to_vec()),
            c if c.is_ascii_punctuation() => (false, vec![(c, c)]),
            _ => return None,
        })
    }

    /// The rest of `[…]`, after the `[`.
    fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<(bool, Vec<(char, char)>)> {
        let negated = chars.next_if_eq(&'^').is_some();
        let mut ranges = Vec::new();
        loop {
            let low = match chars.next()? {
                ']' => break,
                '\\' => match escape(chars.next()?)? {
                    (false, escaped) if escaped.len() == 1 && escaped[0].0 == escaped[0].1 => escaped[0].0,
                    (false, set) => {
                        ranges.extend(set);
                        continue;
                    }
                    (true, _) => return None,
                },
                c => c,
            };
            // `a-z` is a range; a `-` before `]` is a literal.
            if chars.peek() == Some(&'-') {
                chars.next();
                match chars.next()? {
                    ']' => {
                        ranges.extend([(low, low), ('-', '-')]);
                        break;
                    }
                    '\\' => return None,
                    high => ranges.push((low, high)),
                }
            } else {
                ranges.push((low, low));
            }
        }
        Some((negated, ranges))
    }

    fn quantifier(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<(usize, usize)> {
        let bounds = match chars.peek() {
            Some('?') => (0, 1),
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('{') => {
                chars.next();
                let spec: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let (min, max) = match spec.split_once(',') {
                    None => (spec.as_str(), Some(spec.as_str())),
                    Some((min, "")) => (min, None),
                    Some((min, max)) => (min, Some(max)),
                };
                let min = min.parse().ok()?;
                let max = max.map_or(Some(usize::MAX), |m| m.parse().ok())?;
                return (chars.peek() != Some(&'?')).then_some((min, max));
            }
            _ => return Some((1, 1)),
        };
        chars.next();
        // A lazy or possessive quantifier is beyond this matcher.
        (!matches!(chars.peek(), Some('?' | '+'))).then_some(bounds)
    }

    #[test]
    fn matches_the_patterns_the_specs_use_and_declines_the_rest() {
        assert_eq!(matches("^CA[0-9a-fA-F]{32}$", &format!("CA{}", "a".repeat(32))), Some(true));
        assert_eq!(matches("^CA[0-9a-fA-F]{32}$", "CA123"), Some(false));
        assert_eq!(matches("/^[a-zA-Z0-9_-]{1,64}$/", "transfer_call-2"), Some(true));
        assert_eq!(matches("/^[a-zA-Z0-9_-]{1,64}$/", "transfer call"), Some(false));
        assert_eq!(matches("/^[a-zA-Z0-9_-]{1,64}$/", ""), Some(false));
        assert_eq!(matches("/^[a-zA-Z][a-zA-Z0-9_]*$/", "a1_b"), Some(true));
        assert_eq!(matches("/^[a-zA-Z][a-zA-Z0-9_]*$/", "1a"), Some(false));
        assert_eq!(matches(r"^\+?[a-zA-Z0-9]+$", "+14155550100"), Some(true));
        assert_eq!(matches(r"^a.c\d{2,}$", "abc12"), Some(true));
        assert_eq!(matches(r"^a.c\d{2,}$", "abc1"), Some(false));
        assert_eq!(matches("^[^-]x[a-]$", "yx-"), Some(true));
        assert_eq!(matches(r"/^\p{L}[\p{L}\d]*(?::[+-]?\d+)?$/u", "en"), None);
        assert_eq!(matches("^(a|b)$", "a"), None);
        assert_eq!(matches("a+", "a"), None, "unanchored");
        assert_eq!(matches("^a+?$", "a"), None, "lazy");
        assert_eq!(matches("/^a$/i", "A"), None, "flags");
    }
}

#[test]
fn formats_accept_the_shapes_vapi_writes_and_reject_others() {
    assert!(is_rfc3339("2026-03-24T18:00:00.000Z"));
    assert!(is_rfc3339("2026-03-24T18:00:00Z"));
    assert!(is_rfc3339("2026-03-24T18:00:00+01:00"));
    assert!(!is_rfc3339("2026-03-24 18:00:00Z"));
    assert!(!is_rfc3339("2026-13-24T18:00:00Z"));
    assert!(!is_rfc3339("2026-03-24T18:00:00"));
    assert!(!is_rfc3339("Tue, 31 Aug 2010 20:36:28 +0000"));
    assert!(is_uuid("019d2ad0-6b3e-7c1a-9f00-0123456789ab"));
    assert!(!is_uuid("019d2ad0-6b3e-7c1a-9f00-0123456789a"));
    assert!(!is_uuid("019d2ad0x6b3e-7c1a-9f00-0123456789ab"));
    assert!(is_uri("wss://phone-call-websocket.example/1/listen"));
    assert!(is_uri("/2010-04-01/Accounts/AC1/Calls.json"));
    assert!(!is_uri("office"));
    assert!(!is_uri("://nothing"));
}

#[test]
fn each_keyword_and_key_mode_works_on_a_small_spec() {
    let doc = serde_json::json!({"components": {"schemas": {
        "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "format": "uuid"}}},
        "Pet": {"allOf": [{"$ref": "#/components/schemas/Base"}],
                "properties": {"age": {"type": "integer", "minimum": 0}, "tags": {"type": "array", "items": {"type": "string"}}}},
        "Cat": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string", "enum": ["cat"]}}},
        "Dog": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string", "enum": ["dog"]}, "good": {"type": "boolean"}}},
        "Animal": {"oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                   "discriminator": {"propertyName": "kind", "mapping": {"cat": "#/components/schemas/Cat", "dog": "#/components/schemas/Dog"}}},
        "Either": {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "number", "nullable": true}]},
        "Sealed": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false},
        "Map": {"type": "object", "additionalProperties": {"type": "number"}},
    }}});
    let open = Spec::new(
        &doc,
        Options { keys: Keys::Open, null_for_bare_ref: false, empty_strings_unchecked: false },
    );
    let known = ["Pet.name"];
    let closed = Spec::new(&doc, Options { keys: Keys::Closed { known: &known }, ..open.options });
    let exact = Spec::new(&doc, Options { keys: Keys::Exact, ..open.options });
    let json = |text: &str| -> Value { serde_json::from_str(text).unwrap() };
    let errors = |spec: &Spec<'_>, name: &str, text: &str| {
        spec.validate_component(name, &json(text)).err().unwrap_or_default()
    };

    let pet = r#"{"id": "019d2ad0-6b3e-7c1a-9f00-0123456789ab", "age": 3, "name": "Rex"}"#;
    assert!(errors(&open, "Pet", pet).is_empty());
    assert!(errors(&closed, "Pet", pet).is_empty(), "the allOf member's `id` is listed, `name` is known");
    assert_eq!(
        errors(&closed, "Pet", r#"{"id": "019d2ad0-6b3e-7c1a-9f00-0123456789ab", "nme": "Rex"}"#),
        ["$: unexpected property `nme` (not in Pet)"]
    );
    assert_eq!(
        errors(&exact, "Base", "{}"),
        ["$: missing property `id` (every listed property is written, null when unset)"]
    );
    assert_eq!(
        errors(&open, "Pet", r#"{"id": "x", "age": -1, "tags": ["a", 2]}"#),
        [
            "$.age: -1 is below the minimum 0",
            "$.tags[1]: expected \"string\", got 2",
            "$.id: `x` is not a UUID"
        ]
    );
    assert_eq!(
        errors(&open, "Pet", r#"{"age": null}"#),
        ["$.age: null, but the schema is not nullable", "$: missing required property `id`"]
    );

    assert!(errors(&open, "Animal", r#"{"kind": "dog", "good": true}"#).is_empty());
    assert_eq!(
        errors(&open, "Animal", r#"{"kind": "dog", "good": 1}"#),
        ["$.good: expected \"boolean\", got 1"]
    );
    assert_eq!(
        errors(&open, "Animal", r#"{"kind": "cow"}"#),
        [r#"$.kind: "cow" is not one of ["cat", "dog"]"#]
    );
    assert_eq!(
        errors(&open, "Animal", "{}"),
        [r#"$: missing property `kind`, which selects one of ["cat", "dog"]"#]
    );

    assert!(errors(&open, "Either", r#""ab""#).is_empty());
    assert!(errors(&open, "Either", "null").is_empty());
    assert_eq!(
        errors(&open, "Either", r#""abc""#),
        [
            "$: matches no `anyOf` branch: [#0 string] $: `abc` has 3 characters, expected at most 2; [#1 number] $: expected \"number\", got \"abc\""
        ]
    );

    assert_eq!(
        errors(&open, "Sealed", r#"{"a": "x", "b": 1}"#),
        ["$: unexpected property `b` (not in Sealed)"]
    );
    assert_eq!(errors(&closed, "Map", r#"{"a": 1, "b": "2"}"#), ["$.b: expected \"number\", got \"2\""]);
    assert_eq!(
        open.validate_component("Nope", &Value::Null),
        Err(vec!["the spec has no component schema `Nope`".to_owned()])
    );
}
