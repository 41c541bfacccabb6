//! Vapi's error bodies: NestJS shapes, `{"message": …, "error": "<reason phrase>", "statusCode": N}`.
//!
//! Validation failures carry an array of messages (class-validator with whitelisting, reference §1);
//! other failures a single string. The 401 text is the one the real API answers verbatim.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error the fake Vapi answers with.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct VapiError {
    pub status: StatusCode,
    /// A string, or an array of strings for validation errors.
    pub message: Value,
}

impl VapiError {
    /// Missing or unknown API key (reference §1, observed verbatim).
    pub fn unauthorized() -> Self {
        VapiError {
            status: StatusCode::UNAUTHORIZED,
            message: json!(
                "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa."
            ),
        }
    }

    /// Validation errors, one message each, as class-validator words them.
    pub fn invalid(messages: Vec<String>) -> Self {
        VapiError { status: StatusCode::BAD_REQUEST, message: json!(messages) }
    }

    /// A bad request that is not a validation error (a missing resource the body names, a policy).
    pub fn bad_request(message: impl Into<String>) -> Self {
        VapiError { status: StatusCode::BAD_REQUEST, message: json!(message.into()) }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        VapiError { status: StatusCode::NOT_FOUND, message: json!(message.into()) }
    }

    pub fn body(&self) -> Value {
        json!({
            "message": self.message,
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "statusCode": self.status.as_u16(),
        })
    }
}

impl IntoResponse for VapiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_401_body_is_the_real_one() {
        assert_eq!(
            VapiError::unauthorized().body().to_string(),
            r#"{"message":"Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.","error":"Unauthorized","statusCode":401}"#
        );
    }

    #[test]
    fn validation_errors_are_an_array() {
        let e = VapiError::invalid(vec!["property foo should not exist".into()]);
        assert_eq!(
            e.body().to_string(),
            r#"{"message":["property foo should not exist"],"error":"Bad Request","statusCode":400}"#
        );
    }
}
