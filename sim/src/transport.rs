//! Webhook transport: how the fakes reach a target's URLs.
//!
//! Two implementations behind one trait: [`InMemoryTransport`] calls an axum `Router` (any tower
//! service) directly, with no socket, for in-process targets in virtual time; [`HttpTransport`] uses
//! reqwest for external targets. Deadlines are not the transport's business: the caller wraps a send in
//! its own timeout, measured on the run's clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use indexmap::IndexMap;
use tower::ServiceExt;

/// The most a webhook response may carry; a larger body is an error, never an allocation.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A request the fakes send to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The target's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Why a request got no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("connection refused: nothing answers at {0}")]
    Refused(String),
    #[error("invalid URL `{0}`")]
    BadUrl(String),
    #[error("response larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("connection failed: {0}")]
    Io(String),
}

pub type SendFuture = Pin<Box<dyn Future<Output = Result<TargetResponse, TransportError>> + Send>>;

/// Delivers requests to targets.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    fn send(&self, request: OutboundRequest) -> SendFuture;
}

/// Routes requests by URL authority (`host` or `host:port`) to in-process routers.
#[derive(Clone, Debug, Default)]
pub struct InMemoryTransport {
    hosts: IndexMap<String, Router>,
}

impl InMemoryTransport {
    pub fn new() -> Self {
        InMemoryTransport::default()
    }

    /// Serves `authority` (`orchestrator.test`, `127.0.0.1:3000`) with `router`.
    pub fn route(mut self, authority: impl Into<String>, router: Router) -> Self {
        self.hosts.insert(authority.into(), router);
        self
    }

    pub fn add_route(&mut self, authority: impl Into<String>, router: Router) {
        self.hosts.insert(authority.into(), router);
    }
}

impl Transport for InMemoryTransport {
    fn send(&self, request: OutboundRequest) -> SendFuture {
        let uri: http::Uri = match request.url.parse() {
            Ok(uri) => uri,
            Err(_) => return Box::pin(std::future::ready(Err(TransportError::BadUrl(request.url)))),
        };
        let Some(authority) = uri.authority().map(|a| a.as_str().to_owned()) else {
            return Box::pin(std::future::ready(Err(TransportError::BadUrl(request.url))));
        };
        let Some(router) = self.hosts.get(&authority).cloned() else {
            return Box::pin(std::future::ready(Err(TransportError::Refused(authority))));
        };
        Box::pin(async move {
            let mut builder = http::Request::builder().method(request.method).uri(uri);
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let req = builder
                .header(http::header::HOST, authority)
                .body(axum::body::Body::from(request.body))
                .map_err(|e| TransportError::Io(e.to_string()))?;
            let response = router.oneshot(req).await.map_err(|e| TransportError::Io(e.to_string()))?;
            let status = response.status().as_u16();
            let content_type = content_type(response.headers());
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|_| TransportError::TooLarge { limit: MAX_RESPONSE_BYTES })?
                .to_bytes();
            Ok(TargetResponse { status, content_type, body })
        })
    }
}

/// Sends requests over real sockets.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A client with Twilio's connect timeout (5 s per attempt) scaled by `time_scale`.
    pub fn new(time_scale: f64) -> Result<Self, TransportError> {
        let connect = std::time::Duration::from_secs_f64((5.0 * time_scale).max(0.05));
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| TransportError::Io(e.to_string()))?;
        Ok(HttpTransport { client })
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: OutboundRequest) -> SendFuture {
        let client = self.client.clone();
        Box::pin(async move {
            let mut builder = client.request(request.method, &request.url);
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let mut response = builder.body(request.body).send().await.map_err(|e| {
                if e.is_builder() {
                    TransportError::BadUrl(request.url.clone())
                } else if e.is_connect() {
                    TransportError::Refused(request.url.clone())
                } else {
                    TransportError::Io(e.to_string())
                }
            })?;
            let status = response.status().as_u16();
            let content_type = content_type(response.headers());
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| TransportError::Io(e.to_string()))? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(TransportError::TooLarge { limit: MAX_RESPONSE_BYTES });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(TargetResponse { status, content_type, body: Bytes::from(body) })
        })
    }
}

fn content_type(headers: &http::HeaderMap) -> Option<String> {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    #[tokio::test]
    async fn in_memory_transport_calls_the_router_for_the_url_authority() {
        let router = Router::new().route("/voice", post(|body: String| async move { format!("got {body}") }));
        let transport = InMemoryTransport::new().route("orchestrator.test", router);
        let response = transport
            .send(OutboundRequest {
                method: http::Method::POST,
                url: "http://orchestrator.test/voice".into(),
                headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
                body: Bytes::from_static(b"CallSid=CA1"),
            })
            .await
            .expect("routed");
        assert_eq!((response.status, response.body), (200, Bytes::from_static(b"got CallSid=CA1")));
    }

    #[tokio::test]
    async fn in_memory_transport_refuses_unknown_hosts() {
        let transport = InMemoryTransport::new();
        let err = transport
            .send(OutboundRequest {
                method: http::Method::GET,
                url: "http://nowhere.test/x".into(),
                headers: vec![],
                body: Bytes::new(),
            })
            .await
            .expect_err("no such host");
        assert_eq!(err, TransportError::Refused("nowhere.test".into()));
    }
}
