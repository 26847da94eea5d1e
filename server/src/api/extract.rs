//! What every API handler starts from: the caller (bearer token or cookie, resolved
//! exactly as for pages and server functions), and bodies, queries and paths that
//! answer bad input with the one error shape and the right status.

use std::net::SocketAddr;

use app::{context::RequestContext, error::AppError, session::Lookup};
use axum::{
    body::{to_bytes, Body},
    extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::de::DeserializeOwned;

use crate::http::{json_error, request_context, session_cookies, ServerState};

/// Request bodies of the JSON API are at most this long.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The response header that hands a bearer client its actor's new token, when the
/// session on behalf its token belonged to has ended (a cookie client gets a cookie).
pub const TOKEN_HEADER: &str = "behalf-token";

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

/// The `Authorization: Bearer <token>` value, if the request has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Who is calling, as the services see it. A bearer token wins over a cookie; a
/// request whose session on behalf has ended acts as no one (409 `on_behalf_ended`),
/// and its client is given the actor's own session back.
pub struct Caller {
    pub context: RequestContext,
}

impl FromRequestParts<ServerState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let bearer = bearer_token(&parts.headers);
        let is_bearer = parts.headers.contains_key(header::AUTHORIZATION);
        let token = match &bearer {
            Some(token) => Some(token.clone()),
            // An Authorization header that is not a bearer token is not a cookie
            // request either: it names no session.
            None if is_bearer => Some(String::new()),
            None => None,
        };
        let (mut context, lookup, _) = request_context(state, &parts.headers, peer, token).await?;
        if is_bearer {
            // A bearer client has no cookie to clear.
            context.stale_cookie = false;
        }
        if lookup.ended_on_behalf {
            return Err(ended(state, &context, &lookup, is_bearer));
        }
        Ok(Caller { context })
    }
}

fn ended(state: &ServerState, context: &RequestContext, lookup: &Lookup, bearer: bool) -> ApiError {
    let mut headers = Vec::new();
    match (&lookup.reissued, bearer) {
        (Some(token), true) => {
            if let Ok(value) = HeaderValue::from_str(token.expose()) {
                headers.push((header::HeaderName::from_static(TOKEN_HEADER), value));
            }
        }
        _ => {
            for cookie in session_cookies(context, lookup, &state.app.settings) {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    headers.push((header::SET_COOKIE, value));
                }
            }
        }
    }
    ApiError {
        error: AppError::OnBehalfEnded,
        headers,
    }
}

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

    #[test]
    fn only_bearer_authorization_names_a_token() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
    }
}
