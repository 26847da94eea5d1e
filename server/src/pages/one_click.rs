//! The one-click link pages: `GET /one-click/{member_id}/{token}` asks "Continue as
//! …?" and uses nothing up (mail scanners and chat previews fetch links); the form's
//! `POST` to the same address consumes the link and signs the member in. Every
//! failure is the same page and status; the audit record says which it was.

use app::{clock::format_utc, context::RequestContext, error::AppError, one_click::service as one_click};
use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};

use crate::{
    errors::error_page,
    html::{escape_html, page},
    session::Caller,
    state::ServerState,
};

// Every answer under /one-click is private (not cached, indexed or sent on as a
// referrer): the request pipeline sees to it for the whole route.

/// The generic failure, or another error's page (throttled, internal).
fn failure(error: &AppError) -> Response {
    if *error == AppError::LinkUnusable {
        let body = format!(
            "<h1>This link cannot be used</h1><p role=\"alert\">{}</p>\
             <p><a href=\"/login\">Sign in with your password</a></p>",
            escape_html(&error.to_string())
        );
        return page(StatusCode::NOT_FOUND, "Link cannot be used", &body);
    }
    error_page(error)
}

/// Who this browser is signed in as now, and what continuing does to that.
fn replaced_session(context: &RequestContext) -> String {
    let Some(session) = &context.session else {
        return String::new();
    };
    let text = match &session.on_behalf {
        Some(on_behalf) => format!(
            "This browser is in a session on behalf of {} (as {}). Continuing ends it and signs {} out.",
            session.member.display_name, on_behalf.actor.display_name, on_behalf.actor.display_name
        ),
        None => format!(
            "This browser is signed in as {}. Continuing signs {} out first.",
            session.member.display_name, session.member.display_name
        ),
    };
    format!(
        "<div class=\"notice notice-warning\" role=\"alert\"><p>{}</p></div>",
        escape_html(&text)
    )
}

/// GET: the confirmation page.
pub async fn open(
    State(state): State<ServerState>,
    Caller { context }: Caller,
    address: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    // An address that is not even text (bad percent-encoding) is malformed like any
    // other: the same page, recorded and throttled.
    let (member_id, token) = address.map(|Path(parts)| parts).unwrap_or_default();
    match one_click::preview(&state.app, &context, &member_id, &token).await {
        Err(error) => failure(&error),
        Ok(preview) => {
            let name = escape_html(&preview.display_name);
            let body = format!(
                "<div class=\"one-click-page\"><h1>Continue as {name}</h1>\
                 <p>This link signs you in to Behalf as <strong>{name}</strong>. It works once, until {}.</p>\
                 {}<form method=\"post\" class=\"actions\">\
                 <button type=\"submit\" class=\"button primary\">Continue</button>\
                 <a href=\"/\">Not now</a></form></div>",
                escape_html(&format_utc(preview.expires_at)),
                replaced_session(&context),
            );
            page(
                StatusCode::OK,
                &format!("Continue as {}", preview.display_name),
                &body,
            )
        }
    }
}

/// POST: consume the link and sign the member in (303 to their home page).
pub async fn continue_with(
    State(state): State<ServerState>,
    Caller { context }: Caller,
    address: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    // An address that is not even text (bad percent-encoding) is malformed like any
    // other: the same page, recorded and throttled.
    let (member_id, token) = address.map(|Path(parts)| parts).unwrap_or_default();
    match one_click::continue_with(&state.app, &context, &member_id, &token).await {
        Ok(session) => {
            let mut response = Redirect::to("/").into_response();
            *response.status_mut() = StatusCode::SEE_OTHER;
            let cookie =
                app::session::session_cookie(&session, context.https, state.app.settings.session_lifetime);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response
                    .headers_mut()
                    .append(axum::http::header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => failure(&error),
    }
}
