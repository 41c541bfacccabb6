//! The journal middleware both fakes' REST routers share: every request is recorded when it arrives
//! and its response when it leaves, with credentials reduced to who sent them.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use crate::journal::{HttpExchange, HttpResponse, Party};
use crate::runtime::SharedSim;

/// The most a fake reads of a request body.
const LIMIT: usize = 1 << 20;

/// Journals one exchange with a REST client; `too_large` answers a body over 1 MiB.
pub(crate) async fn record(
    sim: &SharedSim,
    to: Party,
    too_large: impl FnOnce() -> Response,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = http_body_util::Limited::new(body, LIMIT).collect().await.map(|c| c.to_bytes()) else {
        return too_large();
    };
    let mut request_headers = Vec::new();
    if let Some(auth) = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        request_headers.push(("authorization".to_owned(), redact_header("authorization", auth)));
    }
    let exchange = HttpExchange {
        from: Party::Client,
        to,
        method: parts.method.to_string(),
        url: parts.uri.to_string(),
        request_headers,
        request_body: String::from_utf8_lossy(&bytes).into_owned(),
        response: None,
        error: None,
        finished_at: None,
        expects_twiml: false,
        fault: None,
        target_answer: None,
    };
    let id = {
        let mut world = sim.world();
        let now = world.now();
        world.journal_mut().begin_http(now, exchange)
    };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    {
        let mut world = sim.world();
        let now = world.now();
        let content_type =
            parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = String::from_utf8_lossy(&bytes).into_owned();
        world.journal_mut().finish_http(
            id,
            now,
            Ok(HttpResponse { status: parts.status.as_u16(), content_type, body }),
        );
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A header as the journal keeps it. Credentials are kept by shape, never by value, since journals end
/// up in reports: `Basic <base64>` → `Basic AC…:***` (who called), `Bearer <key>` and `x-vapi-secret`
/// → their length. Every other header is kept as it is.
pub(crate) fn redact_header(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("x-vapi-secret") {
        return format!("<redacted {} chars>", value.len());
    }
    if !name.eq_ignore_ascii_case("authorization") {
        return value.to_owned();
    }
    if let Some((user, _)) = crate::twilio::calls::basic_credentials(value) {
        return format!("Basic {user}:***");
    }
    match value.split_once(' ') {
        Some((scheme, secret)) => format!("{scheme} <redacted {} chars>", secret.len()),
        None => format!("<redacted {} chars>", value.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_header;

    #[test]
    fn credentials_are_journaled_by_shape_only() {
        let basic = "Basic QUMxMjM6c2VjcmV0"; // AC123:secret
        assert_eq!(redact_header("Authorization", basic), "Basic AC123:***");
        assert_eq!(redact_header("authorization", "Bearer abcdef"), "Bearer <redacted 6 chars>");
        assert_eq!(redact_header("X-Vapi-Secret", "s3cret"), "<redacted 6 chars>");
        assert_eq!(redact_header("x-signature", "abc"), "abc");
    }
}
