//! The TwiML documents the orchestrator answers Twilio with.

use quick_xml::escape::escape;

/// The caller waits in `conference` hearing `wait_url`'s music until a specialist joins (who starts it);
/// the conference ends when the caller leaves. If it ends under the caller, Twilio asks `action`.
pub fn hold(conference: &str, wait_url: &str, action: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="{}" method="POST"><Conference startConferenceOnEnter="false" endConferenceOnExit="true" beep="false" waitUrl="{}" waitMethod="POST">{}</Conference></Dial></Response>"#,
        escape(action),
        escape(wait_url),
        escape(conference)
    )
}

/// The answering specialist joins (and starts) the caller's conference; leaving it does not end it, so the
/// orchestrator can bring the caller back.
pub fn join(conference: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false" beep="false">{}</Conference></Dial></Response>"#,
        escape(conference)
    )
}

/// Hold music for the conference's `waitUrl`, looped until the caller leaves the wait.
pub fn hold_music(audio_url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Play loop="0">{}</Play></Response>"#,
        escape(audio_url)
    )
}

/// Come back to `voice_url` in a second (the assistant session is not ready yet).
pub fn retry(voice_url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="1"/><Redirect method="POST">{}</Redirect></Response>"#,
        escape(voice_url)
    )
}

/// The assistant cannot be reached at all.
pub fn unavailable() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>We are sorry, our assistant cannot take your call right now. Please call again in a few minutes.</Say><Hangup/></Response>"#.to_owned()
}

/// Hang up the leg that asked.
pub fn hang_up() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#.to_owned()
}

/// Nothing to do.
pub fn empty() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_and_names_are_escaped() {
        let doc = hold("a<b", "https://x.test/hold?a=1&b=2", "https://x.test/after?caller=CA1&transfer=0");
        assert!(doc.contains(r#"waitUrl="https://x.test/hold?a=1&amp;b=2""#), "{doc}");
        assert!(doc.contains(">a&lt;b</Conference>"), "{doc}");
        assert!(doc.contains(r#"action="https://x.test/after?caller=CA1&amp;transfer=0""#), "{doc}");
    }

    #[test]
    fn every_document_parses_as_xml() {
        for doc in [
            hold("c", "https://x.test/w", "https://x.test/a"),
            join("c"),
            hold_music("https://x.test/m.mp3"),
            retry("https://x.test/v"),
            unavailable(),
            hang_up(),
            empty(),
        ] {
            let mut reader = quick_xml::Reader::from_str(&doc);
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("{doc}: {e}"),
                }
            }
        }
    }
}
