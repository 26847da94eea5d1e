//! The app's pages: rendered completely on the server (async SSR) with the request's
//! caller in context, then hydrated.

use app::{context::RequestContext, shell, state::AppState};
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue},
    response::Response,
};
use leptos::{nonce::Nonce, prelude::provide_context};

use crate::{errors::no_store, security::page_csp, session::Caller, state::ServerState};

/// What a page or server function finds in its context: the app's state and the
/// request's caller.
pub fn provide_request(app: AppState, context: RequestContext) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(app.clone());
        provide_context(context.clone());
    }
}

/// Renders a page with the request's session in context.
pub async fn page_handler(State(state): State<ServerState>, caller: Caller, request: Request) -> Response {
    let options = state.leptos_options.clone();
    // Every page renders completely before the first byte (async SSR): the status
    // (302 to sign in, 403, 404) and the banner are right from the start. Matched
    // routes and the not-found fallback go through the same renderer.
    // One nonce per page: Leptos puts it on the inline scripts it writes, and the
    // policy allows those and no other.
    let nonce = Nonce::new();
    let csp = page_csp(&nonce);
    let provide = provide_request(state.app.clone(), caller.context);
    let render = leptos_axum::render_app_async_with_context(
        move || {
            provide();
            provide_context(nonce.clone());
        },
        move || shell(options.clone()),
    );
    let mut response = render(request).await;
    no_store(&mut response);
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}
