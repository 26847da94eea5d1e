//! Server functions (`POST /api/{name}`): run with the request's caller in context,
//! their errors answered with their own HTTP status (server_fn would send 500 for all
//! of them).

use app::error::AppError;
use axum::{
    body::{to_bytes, Body},
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use leptos_axum::handle_server_fns_with_context;

use crate::{
    errors::{is_json, json_error, json_error_as, no_store, set_retry_after, status_of},
    pages::app::provide_request,
    session::Caller,
    state::ServerState,
};

pub async fn server_fn_handler(
    State(state): State<ServerState>,
    caller: Caller,
    request: Request,
) -> Response {
    let response =
        handle_server_fns_with_context(provide_request(state.app.clone(), caller.context), request)
            .await
            .into_response();
    let mut response = with_error_status(response).await;
    no_store(&mut response);
    response
}

/// Server functions are POST only; any other method gets the one error shape.
pub async fn method_not_allowed() -> Response {
    let mut response = json_error_as(
        StatusCode::METHOD_NOT_ALLOWED,
        &AppError::BadRequest("Server functions are called with POST.".to_string()),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn with_error_status(response: Response) -> Response {
    let is_json = is_json(&response);
    if !is_json && response.status().is_client_error() {
        // Not a server function's answer: leptos's own, for a name it does not know.
        return json_error(&AppError::NotFound(
            "There is no such server function.".to_string(),
        ));
    }
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else {
        return json_error(&AppError::Internal);
    };
    match serde_json::from_slice::<AppError>(&bytes) {
        Ok(error) => {
            // The server function's own error: counted here (json_error counts the rest).
            crate::metrics::count_refusal(&error);
            parts.status = status_of(&error);
            set_retry_after(&mut parts.headers, &error);
            Response::from_parts(parts, Body::from(bytes))
        }
        // Not one of ours (it cannot happen: every server function returns AppError).
        Err(_) => json_error(&AppError::Internal),
    }
}
