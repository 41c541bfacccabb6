//! `ringback call …` against a running `ringback serve`: a caller placed by hand reaches the number's voice
//! URL, keys and hang-ups land, phones change, and a control API that is not there is a clear error.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};

/// `ringback serve` on free loopback ports, stopped when dropped.
struct Serve {
    child: Child,
    control: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(world: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(["serve", "--twilio-addr", "127.0.0.1:0", "--vapi-addr", "127.0.0.1:0", "--world"])
        .arg(world)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ringback serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The first line says where the fake Twilio (and its control API) listens.
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let control = first.rsplit(' ').next().unwrap_or_default().to_owned();
    assert!(control.starts_with("http://127.0.0.1:"), "unexpected first line: {first}");
    // Keep reading its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Serve { child, control }
}

fn call(control: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(["call", "--control", control])
        .args(args)
        .output()
        .expect("ringback call runs")
}

fn ok(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    text
}

#[test]
fn a_call_placed_by_hand_is_listed_pressed_hung_up_and_seen_in_the_timeline() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("call-by-hand");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let world = dir.join("world.toml");
    // The number's voice URL is a closed port: the caller hears Twilio's application error, after a
    // retry, unless they hang up first.
    std::fs::write(
        &world,
        r#"
        [[accounts]]
        sid = "AC00000000000000000000000000000001"
        auth_token = "ringback-auth-token"
        numbers = [{ phone_number = "+15550000100", voice_url = "http://127.0.0.1:9/voice" }]
        "#,
    )
    .expect("world written");
    let s = serve(&world);

    let sid = ok(&call(&s.control, &["place", "+15557770001", "+15550000100"])).trim().to_owned();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    let list = ok(&call(&s.control, &["list"]));
    assert!(list.contains(&sid) && list.contains("+15557770001 → +15550000100"), "{list}");
    ok(&call(&s.control, &["press", &sid, "1#"]));
    ok(&call(&s.control, &["phone", "+15558800001", "busy"]));
    ok(&call(&s.control, &["phone", "+15558800002", r#"{"answer": "human", "after_s": 3}"#]));
    ok(&call(&s.control, &["hangup", &sid]));
    let timeline = ok(&call(&s.control, &["timeline"]));
    assert!(timeline.contains(&format!("call {sid} none → ringing")), "{timeline}");
    assert!(
        timeline.contains("(the far end hung up)") || timeline.contains("application error"),
        "{timeline}"
    );

    let bad = call(&s.control, &["phone", "+15558800001", "sometimes"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("behaviour"), "{bad:?}");
}

#[test]
fn no_control_api_there_is_a_clear_error() {
    let out = call("http://127.0.0.1:9", &["list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is `ringback serve` running"), "{err}");
}
