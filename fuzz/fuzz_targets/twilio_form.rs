//! Fuzzes the fake Twilio's form body and query string decoder (`FormParams::parse`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = ringback_sim::twilio::wire::FormParams::parse(bytes);
});
