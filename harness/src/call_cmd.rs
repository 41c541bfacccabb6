//! `ringback call …`: the control API of a running `ringback serve` from the command line — place a call,
//! speak and press keys as the caller, hang up, set how a phone answers, list calls, follow the timeline.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use reqwest::Method;

/// Drive the fakes of a running `ringback serve` by hand.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The fake Twilio's address, where the control API lives (`ringback serve --twilio-addr`).
    #[arg(long, env = "RINGBACK_CONTROL_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub control: String,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// A caller dials a number of the fake Twilio; prints the new call's SID.
    Place {
        /// The caller's number.
        from: String,
        /// A Twilio number of the world.
        to: String,
    },
    /// The caller says something to the assistant on the line.
    Say {
        sid: String,
        /// The words (several arguments are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// The caller presses keys (0-9, *, #, A-D).
    Press { sid: String, digits: String },
    /// The caller hangs up.
    Hangup { sid: String },
    /// How a phone answers from now on: `busy`, `no-answer`, `human`, … or a behaviour as JSON
    /// (`{"answer": "human", "after_s": 3}`).
    Phone { number: String, behaviour: String },
    /// Every call leg with its status and conference.
    List,
    /// The timeline so far; with `--follow`, then every new line as it comes (Ctrl-C stops).
    Timeline {
        #[arg(long)]
        follow: bool,
    },
}

pub fn run(args: CallArgs) -> Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting a runtime")?;
    runtime.block_on(call(args))
}

async fn call(args: CallArgs) -> Result<()> {
    let base = args.control.trim_end_matches('/').to_owned();
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().context("an HTTP client")?;
    let control = Control { client, base };
    match args.action {
        Action::Place { from, to } => {
            let answer = control
                .send(Method::POST, "/_ringback/calls", Some(serde_json::json!({"from": from, "to": to})))
                .await?;
            let call: serde_json::Value =
                serde_json::from_str(&answer).context("the control API's answer")?;
            say!("{}", call["call_sid"].as_str().unwrap_or(&answer));
        }
        Action::Say { sid, text } => {
            let body = serde_json::json!({"text": text.join(" ")});
            control.send(Method::POST, &format!("/_ringback/calls/{sid}/say"), Some(body)).await?;
        }
        Action::Press { sid, digits } => {
            let body = serde_json::json!({"digits": digits});
            control.send(Method::POST, &format!("/_ringback/calls/{sid}/digits"), Some(body)).await?;
        }
        Action::Hangup { sid } => {
            control.send(Method::POST, &format!("/_ringback/calls/{sid}/hangup"), None).await?;
        }
        Action::Phone { number, behaviour } => {
            let body = if behaviour.trim_start().starts_with('{') {
                serde_json::from_str(&behaviour)
                    .with_context(|| format!("the behaviour {behaviour:?} is not JSON"))?
            } else {
                serde_json::json!({"answer": behaviour})
            };
            control.send(Method::PUT, &format!("/_ringback/phones/{number}"), Some(body)).await?;
        }
        Action::List => {
            let answer = control.send(Method::GET, "/_ringback/calls", None).await?;
            let calls: Vec<serde_json::Value> =
                serde_json::from_str(&answer).context("the control API's answer")?;
            for c in calls {
                let field = |name: &str| c[name].as_str().unwrap_or("-").to_owned();
                say!(
                    "{}  {:<13} {} → {}  {}{}",
                    field("call_sid"),
                    field("direction"),
                    field("from"),
                    field("to"),
                    field("status"),
                    c["conference_sid"].as_str().map(|cf| format!("  in {cf}")).unwrap_or_default()
                );
            }
        }
        Action::Timeline { follow } => {
            let mut read = 0usize;
            loop {
                let answer =
                    control.send(Method::GET, &format!("/_ringback/timeline?after={read}"), None).await?;
                for line in answer.lines() {
                    say!("{line}");
                    read += 1;
                }
                if !follow {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    Ok(())
}

/// The control API at `base`.
struct Control {
    client: reqwest::Client,
    base: String,
}

impl Control {
    /// Sends a request; the answer's body on 2xx, else an error with the API's own message.
    async fn send(&self, method: Method, path: &str, body: Option<serde_json::Value>) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach the control API at {} (is `ringback serve` running there?)", self.base)
        })?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("{url} answered {status}: {message}");
        }
        Ok(text)
    }
}
