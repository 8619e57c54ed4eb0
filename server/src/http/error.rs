//! The one error type of the HTTP API and its mapping to status codes, in one place.
//!
//! Every handler returns `Result<_, Error>`; `IntoResponse` turns an error into
//! `{"error": {"code", "message", "details"?}}` with the right status (API.md). Internal
//! details (database errors, bugs) are logged with the request's span and never sent: the
//! client sees `INTERNAL` and nothing else. Engine rejects keep their own SCREAMING_SNAKE code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::Reject;
use serde::Serialize;
use utoipa::ToSchema;

use crate::sequencer::SequencerError;
use crate::wire::schema::ErrorCode;

/// Seconds a client should wait before retrying after `OVERLOADED`.
const RETRY_AFTER_OVERLOADED_SECS: &str = "1";
/// Seconds before retrying while writes are stopped (a restart is needed).
const RETRY_AFTER_UNAVAILABLE_SECS: &str = "30";

/// The body of every error answer: `{"error": {"code", "message", "details"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[schema(value_type = ErrorCode)]
    pub code: &'static str,
    /// For people: wording may change, so clients branch on `code`.
    pub message: String,
    /// Present only where there is more to say (a `VALIDATION_FAILED` names its field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetails {
    /// The request field (as spelled in the request) that broke a rule.
    pub field: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed JSON, wrong types, a missing field.
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed field that breaks a rule.
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("missing or invalid CSRF token (send the csrf cookie's value in X-CSRF-Token)")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("rejected: {0}")]
    Rejected(Reject),
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the exchange is busy; retry shortly")]
    Overloaded,
    #[error("the exchange is not taking writes")]
    Unavailable,
    #[error("this instance is a read-only gateway; send writes to the primary")]
    ReadOnly,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Error {
        Error::Validation {
            field,
            message: message.into(),
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Error {
        Error::Internal(what.to_string())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Error::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED"),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Error::Csrf => (StatusCode::FORBIDDEN, "CSRF_FAILED"),
            Error::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Error::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
            }
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            Error::Rejected(reject) => reject_status(*reject),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Error::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
            }
            Error::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED"),
            Error::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Error::ReadOnly => (StatusCode::SERVICE_UNAVAILABLE, "READ_ONLY"),
            Error::Database(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
            }
        }
    }
}

/// Engine rejects are the client's doing: 4xx, under their own names. Unknown or foreign
/// orders are a plain 404 so another user's order is never revealed.
fn reject_status(reject: Reject) -> (StatusCode, &'static str) {
    match reject {
        Reject::UnknownOrder | Reject::NotOrderOwner => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Reject::UnknownUser | Reject::UnknownMarket => (StatusCode::NOT_FOUND, reject.code()),
        Reject::SlugTaken | Reject::InvalidMarketTransition => {
            (StatusCode::CONFLICT, reject.code())
        }
        // The sequencer's clock never goes back: this would be a server bug.
        Reject::TimestampBackwards => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, reject.code()),
    }
}

impl From<SequencerError> for Error {
    fn from(error: SequencerError) -> Error {
        match error {
            SequencerError::Overloaded => Error::Overloaded,
            SequencerError::Stopped => Error::Unavailable,
            SequencerError::ReadOnly => Error::ReadOnly,
            SequencerError::Rejected(reject) => Error::Rejected(reject),
            SequencerError::Invalid(what) => Error::Internal(what.to_owned()),
            SequencerError::Snapshot(why) => Error::Internal(why),
        }
    }
}

impl Error {
    /// The answer's status and its `{"error": ...}` body (internal details logged, not sent).
    pub fn status_and_body(&self) -> (StatusCode, ErrorBody) {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error()
            && !matches!(self, Error::Overloaded | Error::Unavailable)
        {
            tracing::error!(error = %self, "request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let details = match self {
            Error::Validation { field, .. } => Some(ErrorDetails { field }),
            _ => None,
        };
        let error = ErrorDetail {
            code,
            message,
            details,
        };
        (status, ErrorBody { error })
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Error::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Error::Overloaded => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_OVERLOADED_SECS),
                );
            }
            Error::Unavailable => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_UNAVAILABLE_SECS),
                );
            }
            Error::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reject_is_a_client_error_but_the_impossible_one() {
        for reject in [
            Reject::InsufficientFunds,
            Reject::PriceOffTick,
            Reject::UnknownOrder,
            Reject::SlugTaken,
            Reject::CashCapExceeded,
        ] {
            assert!(reject_status(reject).0.is_client_error(), "{reject:?}");
        }
        assert_eq!(reject_status(Reject::NotOrderOwner).1, "NOT_FOUND");
        assert_eq!(
            reject_status(Reject::InsufficientFunds).1,
            "INSUFFICIENT_FUNDS"
        );
    }
}
