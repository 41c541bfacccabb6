//! How a world scripts its assistants. The fake has no language model: an assistant greets with its
//! `firstMessage`, then answers each caller utterance with the first unused turn of its script that
//! matches it — words, tool calls, or hanging up.
//!
//! ```toml
//! [[vapi.scripts]]
//! assistant = "front-desk"          # an assistant id or name; "*" (the default) for any
//! [[vapi.scripts.turns]]
//! user = "specialist"               # a caller utterance containing this, any case; absent = any
//! say = "Let me get you a specialist."
//! tool_calls = [{ name = "transfer_to_specialist", arguments = { department = "sales" } }]
//! after_tools = "{{result}}"        # said once the tools answered; {{result}} is the first result
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One assistant's script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The assistant it drives, by id or name; `*` drives every assistant without a script of its own.
    #[serde(default = "any")]
    pub assistant: String,
    #[serde(default)]
    pub turns: Vec<Turn>,
}

fn any() -> String {
    "*".into()
}

/// What the assistant does when it hears a matching utterance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Fires on an utterance containing this text (case-insensitive); absent: on any utterance.
    #[serde(default)]
    pub user: Option<String>,
    /// Said first.
    #[serde(default)]
    pub say: Option<String>,
    /// Tools called after speaking, in one `tool-calls` burst.
    #[serde(default)]
    pub tool_calls: Vec<ToolInvocation>,
    /// Said once every tool answered; `{{result}}` is replaced by the first result.
    #[serde(default)]
    pub after_tools: Option<String>,
    /// Hang up after speaking (`assistant-ended-call`).
    #[serde(default)]
    pub end_call: bool,
}

/// A tool call the assistant makes: the tool's function name and its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolInvocation {
    pub name: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl Turn {
    pub fn matches(&self, utterance: &str) -> bool {
        self.user.as_ref().is_none_or(|needle| utterance.to_lowercase().contains(&needle.to_lowercase()))
    }
}

/// The script for an assistant: its own (by id, then name), else the catch-all.
pub fn find<'a>(scripts: &'a [Script], id: Option<&str>, name: Option<&str>) -> Option<&'a Script> {
    let named = |s: &&Script| Some(s.assistant.as_str()) == id || Some(s.assistant.as_str()) == name;
    scripts.iter().find(named).or_else(|| scripts.iter().find(|s| s.assistant == "*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_reads_from_toml_and_matches_words_in_any_case() {
        let script: Script = toml::from_str(
            r#"
            assistant = "front-desk"
            [[turns]]
            user = "Specialist"
            tool_calls = [{ name = "transfer", arguments = { department = "sales" } }]
            "#,
        )
        .expect("valid script");
        assert!(script.turns[0].matches("I need a specialist please"));
        assert!(!script.turns[0].matches("hello"));
        assert_eq!(script.turns[0].tool_calls[0].arguments["department"], "sales");
    }

    #[test]
    fn an_assistant_gets_its_own_script_before_the_catch_all() {
        let scripts = vec![
            Script { assistant: "*".into(), turns: vec![] },
            Script { assistant: "front-desk".into(), turns: vec![Turn::default()] },
        ];
        assert_eq!(find(&scripts, Some("x"), Some("front-desk")).unwrap().turns.len(), 1);
        assert_eq!(find(&scripts, Some("y"), None).unwrap().turns.len(), 0);
    }
}
