//! Errors as the gateway answers them: a status and `{"error": "..."}`,
//! and the extractors that turn bad input into such errors.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, lowercase.
    pub message: String,
    /// `Retry-After` of a 503, in whole seconds (default 1).
    pub retry_after_secs: u64,
    /// A checkout refused with a known outcome: `"order_placed": false`.
    pub order_placed: Option<bool>,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// Present (and false) when the error says for sure that no order was
    /// placed, so the client knows retrying cannot buy twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_placed: Option<bool>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_secs: RETRY_AFTER_SECS,
            order_placed: None,
        }
    }

    /// Says in the body that no order was placed.
    pub fn not_placed(mut self) -> Self {
        self.order_placed = Some(false);
        self
    }

    /// `Retry-After` of a 503: `after` rounded up to whole seconds, at least 1.
    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after_secs = after.as_secs_f64().ceil().max(1.0) as u64;
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 422.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 503, with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
                order_placed: self.order_placed,
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after_secs),
            );
        }
        response
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Fallback for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// A JSON body whose rejections are JSON errors: 400 for bad syntax, 413
/// for a body over the limit, 415 without a JSON content type, 422 for
/// wrong types or unknown fields.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let message = match &rejection {
        JsonRejection::JsonSyntaxError(_) => "body is not valid json".to_string(),
        JsonRejection::JsonDataError(err) => format!("invalid body: {}", err.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            "expected content-type: application/json".to_string()
        }
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            format!("body larger than {} bytes", super::MAX_BODY_BYTES)
        }
        other => other.body_text().to_lowercase(),
    };
    ApiError::new(status, message)
}

/// Query parameters whose rejections are JSON 400s.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| Self(query.0))
            .map_err(|rejection: QueryRejection| {
                ApiError::bad_request(format!("invalid query: {}", rejection.body_text()))
            })
    }
}

/// Path parameters whose rejections are JSON 400s.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Self(path.0))
            .map_err(|rejection: PathRejection| {
                ApiError::bad_request(format!("invalid path: {}", rejection.body_text()))
            })
    }
}
