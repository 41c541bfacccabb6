//! The seam every request to Twilio and Vapi goes through: the tiny [`HttpClient`] trait, its reqwest
//! implementation for real deployments, and what the API clients share ([`Secret`], [`ApiError`]).
//!
//! The same orchestrator runs against the real providers (through [`ReqwestClient`]) or in process
//! against fakes (another crate implements [`HttpClient`] by calling routers directly), so nothing
//! outside this file knows which HTTP stack carries a request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use http::Method;
use sha2::{Digest, Sha256};

/// The most bytes [`ReqwestClient`] reads from an answer. Twilio's and Vapi's call objects are a few
/// kilobytes; anything past this is refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The longest [`ReqwestClient`] waits for a TCP (and TLS) connection, whatever the whole-request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Header names whose values [`ApiRequest`]'s `Debug` never prints.
const SENSITIVE_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "x-vapi-secret"];

/// One outgoing request, fully built: the URL is absolute and the body already encoded.
#[derive(Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub url: String,
    /// Sent in order; names are case-insensitive.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl ApiRequest {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        ApiRequest { method, url: url.into(), headers: Vec::new(), body: Bytes::new() }
    }

    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        ApiRequest::new(Method::GET, url)
    }

    /// A request whose body is `params` as `application/x-www-form-urlencoded`, in the order given
    /// (repeated names stay repeated).
    pub fn form(method: Method, url: impl Into<String>, params: &[(&str, String)]) -> Self {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            serializer.append_pair(name, value);
        }
        ApiRequest {
            body: Bytes::from(serializer.finish()),
            ..ApiRequest::new(method, url).with_header("Content-Type", "application/x-www-form-urlencoded")
        }
    }

    /// A request whose body is `body` as `application/json`.
    pub fn json(method: Method, url: impl Into<String>, body: &serde_json::Value) -> Self {
        ApiRequest {
            body: Bytes::from(body.to_string()),
            ..ApiRequest::new(method, url).with_header("Content-Type", "application/json")
        }
    }

    /// This request with one more header.
    #[must_use = "with_header returns the request with the header added"]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The value of the first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Prints header names but never the values of credentials, and the body's size rather than its bytes
/// (a Vapi call body may carry a transient number's Twilio token).
impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let sensitive = SENSITIVE_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name));
                (name.as_str(), if sensitive { "***" } else { value.as_str() })
            })
            .collect();
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One answer: its status and its whole body (any status, redirects included; nothing is followed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Bytes,
}

impl ApiResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request got no complete answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("{url} did not answer within the timeout; check that it is reachable or raise the timeout")]
    Timeout { url: String },
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the answer from {url} is larger than {limit} bytes; refusing to read it")]
    TooLarge { url: String, limit: usize },
    /// Anything else: an invalid URL or header, a broken connection mid-answer, a client that cannot be
    /// built. The message names the URL when there is one.
    #[error("{0}")]
    Other(String),
}

/// A request in flight.
pub type HttpFuture = Pin<Box<dyn Future<Output = Result<ApiResponse, HttpError>> + Send>>;

/// Sends requests. Implementations answer with whatever status the server gave, follow no redirects and
/// fail only when there is no complete answer.
pub trait HttpClient: Send + Sync + fmt::Debug + 'static {
    fn send(&self, request: ApiRequest) -> HttpFuture;
}

/// [`HttpClient`] over the network, for real deployments.
#[derive(Clone, Debug)]
pub struct ReqwestClient {
    client: reqwest::Client,
}

impl ReqwestClient {
    /// A client whose requests, answer body included, fail with [`HttpError::Timeout`] after `timeout`.
    /// Connecting may take at most the smaller of `timeout` and five seconds; redirects are returned, not
    /// followed; answers over [`MAX_RESPONSE_BYTES`] fail with [`HttpError::TooLarge`].
    pub fn new(timeout: Duration) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ringback-orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Other(format!("could not build the HTTP client: {}", root_cause(&e))))?;
        Ok(ReqwestClient { client })
    }
}

impl HttpClient for ReqwestClient {
    fn send(&self, request: ApiRequest) -> HttpFuture {
        let client = self.client.clone();
        Box::pin(async move {
            let url = request.url;
            let mut builder = client.request(request.method, &url).body(request.body);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let mut response = builder.send().await.map_err(|e| classify(&url, &e))?;
            let status = response.status().as_u16();
            let too_large = || HttpError::TooLarge { url: url.clone(), limit: MAX_RESPONSE_BYTES };
            // Refuse a declared oversize body before reading any of it; a body without a length (or
            // lying about it) is capped while it streams in.
            if response.content_length().is_some_and(|len| len > MAX_RESPONSE_BYTES as u64) {
                return Err(too_large());
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(&url, &e))? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(ApiResponse { status, body: body.freeze() })
        })
    }
}

fn classify(url: &str, error: &reqwest::Error) -> HttpError {
    let url = url.to_owned();
    if error.is_timeout() {
        HttpError::Timeout { url }
    } else if error.is_connect() {
        HttpError::Connect { url, reason: root_cause(error) }
    } else {
        HttpError::Other(format!("request to {url} failed: {}", root_cause(error)))
    }
}

/// The innermost error's message: reqwest's own levels ("error sending request") say less than the
/// operating system's ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// A secret: an auth token, an API key, a webhook secret. `Debug` and `Display` print `***`; only
/// [`Secret::expose`] gives the value, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, to put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is exactly this secret. The comparison takes the same time whatever the bytes
    /// and lengths, so a caller probing with guesses learns nothing from it.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        // Comparing digests keeps the length of the secret out of the timing as well.
        constant_time_eq(&Sha256::digest(self.0.as_bytes()), &Sha256::digest(candidate))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The value of an HTTP Basic `Authorization` header for `user` and `password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// The value of an HTTP Bearer `Authorization` header for `token`.
pub fn bearer_auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Why a Twilio or Vapi API call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Transport(#[from] HttpError),
    /// A non-2xx answer: its status, the provider's error code if its body had one (Twilio's `code`), and
    /// its message.
    #[error("the API refused the request with HTTP {status}{}: {message}", code_suffix(.code))]
    Rejected { status: u16, code: Option<u32>, message: String },
    /// A 2xx answer whose body was not what the API documents.
    #[error("the API answered with a body it does not document: {0}")]
    Malformed(String),
}

fn code_suffix(code: &Option<u32>) -> String {
    code.map(|code| format!(" (error {code})")).unwrap_or_default()
}

/// At most this many characters of an undocumented error body go into an [`ApiError`].
const EXCERPT_CHARS: usize = 300;

/// A short, printable excerpt of a body that is not the JSON an API documents, for an error message.
pub(crate) fn body_excerpt(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
        return reason.unwrap_or("no body").to_lowercase();
    }
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::response::{IntoResponse, Response};
    use http::{HeaderMap, StatusCode, Uri};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A request as a test server received it.
    #[derive(Clone, Debug)]
    pub(crate) struct Recorded {
        pub(crate) method: Method,
        /// Path and query.
        pub(crate) uri: String,
        pub(crate) headers: HeaderMap,
        pub(crate) body: Bytes,
    }

    impl Recorded {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }

        pub(crate) fn form(&self) -> Vec<(String, String)> {
            form_urlencoded::parse(&self.body).into_owned().collect()
        }

        pub(crate) fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).expect("the recorded body is JSON")
        }
    }

    /// A server on `127.0.0.1:0` answering every request with one canned JSON answer and recording it.
    #[derive(Debug)]
    pub(crate) struct FakeApi {
        pub(crate) base_url: String,
        requests: Arc<Mutex<Vec<Recorded>>>,
    }

    impl FakeApi {
        pub(crate) async fn start(status: u16, body: impl Into<String>) -> FakeApi {
            let requests = Arc::new(Mutex::new(Vec::new()));
            let status = StatusCode::from_u16(status).expect("a valid status");
            let state = (Arc::clone(&requests), status, Bytes::from(body.into()));
            let router = Router::new().fallback(record).with_state(state);
            FakeApi { base_url: serve(router).await, requests }
        }

        /// The only request received; fails if there were none or several.
        pub(crate) fn request(&self) -> Recorded {
            let requests = self.requests.lock().expect("no test panicked while recording");
            assert_eq!(requests.len(), 1, "expected exactly one request, got {requests:#?}");
            requests[0].clone()
        }
    }

    type RecordState = (Arc<Mutex<Vec<Recorded>>>, StatusCode, Bytes);

    async fn record(
        State((requests, status, body)): State<RecordState>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        request_body: Bytes,
    ) -> Response {
        let uri = uri.path_and_query().map(ToString::to_string).unwrap_or_default();
        let recorded = Recorded { method, uri, headers, body: request_body };
        requests.lock().expect("no test panicked while recording").push(recorded);
        (status, [("content-type", "application/json; charset=utf-8")], body).into_response()
    }

    /// Serves `router` on a fresh local port until the test's runtime ends; returns `http://127.0.0.1:port`.
    pub(crate) async fn serve(router: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free local port");
        let address = listener.local_addr().expect("a bound address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}")
    }

    fn client(timeout_ms: u64) -> ReqwestClient {
        ReqwestClient::new(Duration::from_millis(timeout_ms)).expect("the client builds")
    }

    #[tokio::test]
    async fn the_reqwest_client_sends_method_headers_and_body_and_returns_any_status() {
        let api = FakeApi::start(400, r#"{"code":21201,"message":"No 'To' number is specified"}"#).await;
        let request = ApiRequest::form(
            Method::POST,
            format!("{}/x/Calls.json?a=1", api.base_url),
            &[("To", "+1 555".into()), ("StatusCallbackEvent", "ringing".into())],
        )
        .with_header("Authorization", basic_auth("AC1", "tok"));
        let response = client(5000).send(request).await.unwrap();
        assert_eq!(response.status, 400);
        assert!(!response.is_success());
        assert_eq!(&response.body[..], br#"{"code":21201,"message":"No 'To' number is specified"}"#);
        let received = api.request();
        assert_eq!(received.method, Method::POST);
        assert_eq!(received.uri, "/x/Calls.json?a=1");
        assert_eq!(received.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(received.header("authorization"), Some("Basic QUMxOnRvaw=="));
        assert_eq!(&received.body[..], b"To=%2B1+555&StatusCallbackEvent=ringing");
    }

    #[tokio::test]
    async fn the_reqwest_client_returns_redirects_instead_of_following_them() {
        let router = Router::new()
            .fallback(|| async { (StatusCode::FOUND, [("location", "http://127.0.0.1:9/elsewhere")]) });
        let base = serve(router).await;
        let response = client(5000).send(ApiRequest::get(format!("{base}/call"))).await.unwrap();
        assert_eq!(response.status, 302);
    }

    #[tokio::test]
    async fn the_reqwest_client_times_out_on_a_server_that_never_answers() {
        let router = Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        });
        let base = serve(router).await;
        let url = format!("{base}/slow");
        let error = client(200).send(ApiRequest::get(url.clone())).await.unwrap_err();
        assert_eq!(error, HttpError::Timeout { url });
        assert!(error.to_string().contains("/slow did not answer within the timeout"), "{error}");
    }

    #[tokio::test]
    async fn the_reqwest_client_reports_a_refused_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let url = format!("http://{address}/call");
        let error = client(2000).send(ApiRequest::get(url.clone())).await.unwrap_err();
        match &error {
            HttpError::Connect { url: reported, reason } => {
                assert_eq!(reported, &url);
                assert!(!reason.is_empty());
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
        assert!(error.to_string().starts_with(&format!("could not connect to {url}: ")), "{error}");
    }

    #[tokio::test]
    async fn the_reqwest_client_refuses_a_body_declared_larger_than_the_cap() {
        let router = Router::new().fallback(|| async { vec![b'x'; MAX_RESPONSE_BYTES + 1] });
        let base = serve(router).await;
        let url = format!("{base}/big");
        let error = client(5000).send(ApiRequest::get(url.clone())).await.unwrap_err();
        assert_eq!(error, HttpError::TooLarge { url, limit: MAX_RESPONSE_BYTES });
    }

    #[tokio::test]
    async fn the_reqwest_client_accepts_a_body_of_exactly_the_cap() {
        let router = Router::new().fallback(|| async { vec![b'x'; MAX_RESPONSE_BYTES] });
        let base = serve(router).await;
        let response = client(5000).send(ApiRequest::get(format!("{base}/big"))).await.unwrap();
        assert_eq!(response.body.len(), MAX_RESPONSE_BYTES);
    }

    #[tokio::test]
    async fn the_reqwest_client_caps_a_chunked_body_without_a_length_while_it_streams() {
        // A hand-written server: chunked transfer encoding, no Content-Length, 64 KiB chunks forever.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the whole request head first: hyper refuses an answer that comes before its request.
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let read = socket.read(&mut buffer).await.unwrap();
                if read == 0 {
                    return;
                }
                head.extend_from_slice(&buffer[..read]);
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = [b'y'; 64 * 1024];
            loop {
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                if socket.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let url = format!("http://{address}/endless");
        let error = client(5000).send(ApiRequest::get(url.clone())).await.unwrap_err();
        assert_eq!(error, HttpError::TooLarge { url, limit: MAX_RESPONSE_BYTES });
    }

    #[tokio::test]
    async fn the_reqwest_client_reports_an_invalid_url_without_panicking() {
        let error = client(1000).send(ApiRequest::get("not a url")).await.unwrap_err();
        assert!(matches!(error, HttpError::Other(_)), "{error:?}");
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = Secret::from("hunter2".to_owned());
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
        assert!(secret.matches(b"hunter2"));
        assert!(!secret.matches(b"hunter3"));
        assert!(!secret.matches(b"hunter"));
        assert!(!secret.matches(b""));
    }

    #[test]
    fn a_request_debug_hides_credentials_and_the_body() {
        let request =
            ApiRequest::json(Method::POST, "https://api.vapi.ai/call", &serde_json::json!({"a": 1}))
                .with_header("Authorization", bearer_auth("sk-live"))
                .with_header("X-Vapi-Secret", "shh");
        let printed = format!("{request:?}");
        assert!(!printed.contains("sk-live") && !printed.contains("shh"), "{printed}");
        assert!(printed.contains(r#"("Content-Type", "application/json")"#), "{printed}");
        assert!(printed.contains("body_len: 7"), "{printed}");
        assert_eq!(request.header("content-type"), Some("application/json"));
    }

    #[test]
    fn basic_auth_encodes_user_colon_password() {
        // RFC 7617's example.
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn an_excerpt_is_trimmed_truncated_and_never_empty() {
        assert_eq!(body_excerpt(502, b"  \n"), "bad gateway");
        assert_eq!(body_excerpt(599, b""), "no body");
        assert_eq!(body_excerpt(500, b" <html>oops</html>\n"), "<html>oops</html>");
        let long = "é".repeat(EXCERPT_CHARS + 10);
        assert_eq!(body_excerpt(500, long.as_bytes()), format!("{}…", "é".repeat(EXCERPT_CHARS)));
    }

    #[test]
    fn a_rejection_message_names_the_status_and_code() {
        let with_code = ApiError::Rejected { status: 400, code: Some(21220), message: "Call is over".into() };
        assert_eq!(
            with_code.to_string(),
            "the API refused the request with HTTP 400 (error 21220): Call is over"
        );
        let without = ApiError::Rejected { status: 401, code: None, message: "Invalid Key".into() };
        assert_eq!(without.to_string(), "the API refused the request with HTTP 401: Invalid Key");
    }
}
