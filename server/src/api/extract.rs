//! What every API handler starts from besides the caller (which the request pipeline
//! resolved, `crate::session::Caller`): bodies, queries and paths that answer bad
//! input with the one error shape and the right status.

use app::error::AppError;
use axum::{
    body::{to_bytes, Body},
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::de::DeserializeOwned;

use crate::{errors::json_error, state::API_BODY_LIMIT as BODY_LIMIT};

/// An error answered in the one shape, with the cookies or headers that go with it.
pub struct ApiError {
    pub error: AppError,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError {
            error,
            headers: Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_error(&self.error);
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON answer with a new session cookie (the browser uses it; a bearer client
/// ignores it), or one that clears it.
pub fn with_cookie<T: serde::Serialize>(status: StatusCode, body: T, cookie: &str) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A JSON body: `Content-Type: application/json` (else 415), at most 16 KiB (else
/// 413), well-formed (else 400), and of the documented shape with no unknown fields
/// (else 422, naming the field when it can).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(AppError::NotJson.into());
        }
        let bytes =
            to_bytes(request.into_body(), BODY_LIMIT)
                .await
                .map_err(|_| AppError::PayloadTooLarge {
                    limit_kib: (BODY_LIMIT / 1024) as u64,
                })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|error| {
            use serde_json::error::Category;
            let message = clip(&error.to_string());
            match error.classify() {
                Category::Data => ApiError::from(AppError::Validation {
                    field: named_field(&message).unwrap_or_else(|| "body".to_string()),
                    message: format!("The request body does not have the documented shape: {message}"),
                }),
                _ => ApiError::from(AppError::BadRequest(format!(
                    "The request body is not valid JSON: {message}"
                ))),
            }
        })
    }
}

/// The field serde names in its message (``unknown field `x` ``, ``missing field `x` ``).
fn named_field(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    let name = &message[start..end];
    (!name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Query parameters: unknown or malformed ones are a 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                AppError::BadRequest(format!(
                    "The query string is malformed: {}",
                    clip(&rejection.body_text())
                ))
                .into()
            })
    }
}

/// Path parameters: IDs are positive whole numbers that fit 64 bits, else 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| {
                AppError::BadRequest("An ID in the path is a positive whole number.".to_string()).into()
            })
    }
}

/// Refuses IDs below 1 the way a missing record is refused.
pub fn positive(id: i64, what: &str) -> Result<i64, ApiError> {
    if id > 0 {
        Ok(id)
    } else {
        Err(AppError::NotFound(format!("No {what} has the ID {id}.")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        assert_eq!(
            named_field("unknown field `admin`, expected one of `email`, `password`").as_deref(),
            Some("admin")
        );
        assert_eq!(
            named_field("missing field `email` at line 1").as_deref(),
            Some("email")
        );
        assert_eq!(named_field("invalid type: integer `1`, expected a string"), None);
        assert_eq!(named_field("trailing characters"), None);
    }
}
