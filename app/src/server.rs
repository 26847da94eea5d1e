//! Glue between server functions and the request (server only).

use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use crate::{context::RequestContext, error::AppError, state::AppState};

/// The application state and what is known about this request. Every server
/// function starts here, then checks the session and permission it needs.
pub fn server_context() -> Result<(AppState, RequestContext), AppError> {
    let state = use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState was not provided to the server function");
        AppError::Internal
    })?;
    let request = use_context::<RequestContext>().unwrap_or_default();
    Ok((state, request))
}

/// Adds a `Set-Cookie` header to the response.
pub fn set_cookie(cookie: &str) {
    let Some(response) = use_context::<ResponseOptions>() else {
        tracing::error!("no response options to set a cookie on");
        return;
    };
    match http::HeaderValue::from_str(cookie) {
        Ok(value) => response.append_header(http::header::SET_COOKIE, value),
        Err(_) => tracing::error!("refused to send a malformed cookie"),
    }
}

/// Sets the HTTP status of the page being rendered.
pub fn set_status(status: u16) {
    if let (Some(response), Ok(code)) = (
        use_context::<ResponseOptions>(),
        http::StatusCode::from_u16(status),
    ) {
        response.set_status(code);
    }
}
