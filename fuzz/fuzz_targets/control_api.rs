//! Fuzzes the reading of a control API request (`ControlRequest::parse`): the first line is the method
//! and the path, the rest the body.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let (head, body) = match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let (method, path) = head.split_once(' ').unwrap_or(("POST", &head));
    let (Ok(method), Ok(uri)) = (method.parse::<http::Method>(), path.parse::<http::Uri>()) else { return };
    let _ = ringback_sim::control::ControlRequest::parse(&method, &uri, body);
});
