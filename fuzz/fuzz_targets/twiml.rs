//! Fuzzes the fake Twilio's TwiML parser (`twiml::parse`), as `sim/tests/it/parsers.rs` does.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = ringback_sim::twilio::twiml::parse(text);
});
