//! THE request pipeline: one layer resolves who is calling, once per request, for
//! every page, server function, JSON API call, download and one-click page.
//!
//! On the way in it reads the bearer token (JSON API only) or the session cookie,
//! loads the session — a session on behalf with its rule re-checked, idle and maximum
//! expiry applied, the identity-change notice — and puts the [`Caller`] in the
//! request's extensions; handlers take it as an extractor and never resolve a session
//! themselves. Then [`gate`] decides what no handler decides on its own (today: a
//! request whose session on behalf ended acts as no one). On the way out it sets or
//! clears the cookies that follow from the lookup, before the handler's own (so a
//! sign-in or a switch made by the request itself wins).
//!
//! Steps 11–12 add their cross-cutting decisions here: view-only sessions and
//! protected actions in `gate` (by the route's `Surface` and path), what was viewed on
//! behalf after the response, and leaving the member's own data alone in the services
//! the `Caller` is handed to.

use std::net::{IpAddr, SocketAddr};

use app::{
    audit_action::AuditAction,
    audit_writer::{record_folded, trail_path, NewEvent, View},
    context::{Notice, RequestContext},
    error::{AppError, Refusal},
    mode::{on_behalf_allows, Access},
    session::{
        clearing_cookie, clearing_duplicates, cookie_from_headers, find_live, notice_cookie, session_cookie,
        session_from_headers, token::Token, Lookup, SessionCookie, NOTICE_COOKIE,
    },
};
use axum::{
    extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};

use crate::{
    access::{access_of, plain_path},
    errors::{error_page, json_error, no_store},
    security::{private, request_is_https, TOKEN_HEADER},
    state::ServerState,
};

/// Who is calling, as the services see it: what the pipeline resolved for this request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub context: RequestContext,
}

/// Taken (not copied) from the request's extensions: a handler reads its caller once.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<Caller>().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler behind no request pipeline asked for the caller");
            json_error(&AppError::Internal)
        })
    }
}

/// What kind of answer a route gives: it decides how the caller is read (a bearer
/// token only on the JSON API), how a refusal looks, and which cookies go back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// A page the app renders.
    Page,
    /// A server function (`/api/{name}`, POST).
    ServerFn,
    /// The JSON API (`/api/v1/…`).
    Api,
    /// A file to download (the audit CSV).
    Download,
    /// A one-click link's pages (the address holds a secret).
    OneClick,
}

/// Server functions that change nothing and act for no one: they report who the
/// browser is (and why that changed), so they answer even on the request that found
/// its session on behalf over.
const IDENTITY_READS: [&str; 2] = ["/api/whoami", "/api/notice"];

/// The route properties the pipeline acts on, read from the request once.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub surface: Surface,
    /// It still answers when the request's session on behalf has ended (it then acts
    /// as the actor's own session, or as no one): pages, one-click pages, the identity
    /// reads and the API's own description.
    pub acts_when_ended: bool,
    /// What it does, for a session on behalf (`access::ROUTES`): read, write,
    /// protected, or about the session itself.
    pub access: Access,
    /// What a member reads in their Access history when it was viewed on their behalf.
    pub label: Option<&'static str>,
}

impl Route {
    pub fn of(path: &str) -> Route {
        let surface = if path == "/api/v1" || path.starts_with("/api/v1/") {
            Surface::Api
        } else if path.starts_with("/api/") {
            Surface::ServerFn
        } else if path == "/admin/audit.csv" {
            Surface::Download
        } else if path.starts_with("/one-click/") {
            Surface::OneClick
        } else {
            Surface::Page
        };
        let acts_when_ended = match surface {
            Surface::Page | Surface::OneClick => true,
            Surface::ServerFn => IDENTITY_READS.contains(&path),
            Surface::Api => path == "/api/v1/openapi.json",
            Surface::Download => false,
        };
        Route {
            surface,
            acts_when_ended,
            access: Access::Session,
            label: None,
        }
    }

    /// The route of `request`: its surface by path, and what it does by method and
    /// template (the API's and one-click pages' matched template; a server function's
    /// or a page's own path).
    ///
    /// A path that is not in its plain form (`access::plain_path`: dot or empty
    /// segments, once decoded) is refused with 400 before anything else: the page
    /// router would resolve it into another page than the one it names.
    pub fn of_request(request: &Request) -> Result<Route, (Route, AppError)> {
        let raw = request.uri().path();
        let mut route = Route::of(raw);
        let Some(path) = plain_path(raw) else {
            let error = AppError::BadRequest(
                "This address is not in its plain form (a '.', '..' or empty part): use the address without them."
                    .into(),
            );
            return Err((route, error));
        };
        let template = match route.surface {
            Surface::Api | Surface::OneClick => request
                .extensions()
                .get::<MatchedPath>()
                .map_or(path.as_str(), MatchedPath::as_str),
            Surface::ServerFn | Surface::Download | Surface::Page => path.as_str(),
        };
        (route.access, route.label) = access_of(request.method(), template, route.surface == Surface::Page);
        Ok(route)
    }

    /// An error answered in this surface's shape: JSON for the API and server
    /// functions, a page for a browser that navigated.
    fn refusal(&self, error: &AppError) -> Response {
        let mut response = match self.surface {
            Surface::Api | Surface::ServerFn => json_error(error),
            Surface::Page | Surface::Download | Surface::OneClick => error_page(error),
        };
        no_store(&mut response);
        if self.surface == Surface::OneClick {
            private(&mut response);
        }
        response
    }
}

/// The layer: resolve, decide, run the handler, hand the cookies back.
pub async fn pipeline(State(state): State<ServerState>, mut request: Request, next: Next) -> Response {
    let route = match Route::of_request(&request) {
        Ok(route) => route,
        Err((route, error)) => return route.refusal(&error),
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let resolved = match resolve(&state, request.headers(), peer, route.surface).await {
        Ok(resolved) => resolved,
        Err(error) => return route.refusal(&error),
    };
    if let Err(error) = gate(&route, &resolved) {
        let what = (
            request.method().to_string(),
            trail_path(request.uri().path(), None),
        );
        record_refusal(&state, what, &resolved.context, &error).await;
        let mut response = route.refusal(&error);
        let cookies = resolved.refusal_headers(&state, &route);
        prepend_headers(&mut response, cookies);
        return response;
    }
    let view = viewed(&route, &resolved.context, &request);
    let (resolved, context) = resolved.into_caller();
    request.extensions_mut().insert(Caller { context });
    let mut response = next.run(request).await;
    if let Some(view) = view.filter(|_| response.status().is_success()) {
        // Noted in memory only: written behind the request (`audit_writer::trail`).
        state.app.trail.note(view, state.app.clock.now());
    }
    let cookies = resolved.cookies_out(&state, &route, &response);
    prepend_headers(&mut response, cookies);
    if route.surface == Surface::OneClick {
        private(&mut response);
    }
    response
}

/// THE seam for every cross-cutting decision about a request, before any handler
/// runs. A request whose session on behalf ended while it was on its way acts as no
/// one: refused with 409 `on_behalf_ended` (its client gets the actor's own session
/// back), never carried out as someone else. In a session on behalf, a protected
/// action is refused whatever the mode (403 `on_behalf_protected_action`) and a
/// change in a view-only session (403 `on_behalf_view_only`), by the route's class
/// in `access::ROUTES`; nothing has run, so nothing changed.
pub fn gate(route: &Route, resolved: &Resolved) -> Result<(), AppError> {
    if resolved.lookup.ended_on_behalf && !route.acts_when_ended {
        return Err(AppError::OnBehalfEnded);
    }
    let mode = resolved.context.session.as_ref().and_then(|s| s.on_behalf_mode());
    on_behalf_allows(mode, route.access)?;
    Ok(())
}

/// A session on behalf refused by the gate (a protected action, or a change while view
/// only) is recorded as `on_behalf_refused` under the actor's name, with the code, the
/// method and the path; repeats are folded like every refusal. Nothing else is written.
async fn record_refusal(
    state: &ServerState,
    (method, path): (String, String),
    context: &RequestContext,
    error: &AppError,
) {
    let Some(session) = context.session.as_ref().filter(|s| s.on_behalf.is_some()) else {
        return;
    };
    let AppError::Refused(refusal @ (Refusal::OnBehalfProtected | Refusal::OnBehalfViewOnly)) = error else {
        return;
    };
    let event = NewEvent::new(AuditAction::OnBehalfRefused, context)
        .actor(session.actor().id)
        .on_behalf(session.id)
        .subject(session.member.id)
        .details(serde_json::json!({
            "code": refusal.code(),
            "method": method,
            "path": path,
        }));
    let app = &state.app;
    if let Err(error) = record_folded(&app.db, &app.refusals, app.clock.now(), event).await {
        tracing::error!(%error, "could not record a refusal on behalf");
    }
}

/// The view a read in a session on behalf makes, to note once it has succeeded.
fn viewed(route: &Route, context: &RequestContext, request: &Request) -> Option<View> {
    if route.access != Access::Read {
        return None;
    }
    let session = context.session.as_ref()?;
    let on_behalf = session.on_behalf.as_ref()?;
    Some(View {
        session_id: session.id,
        actor_id: on_behalf.actor.id,
        member_id: session.member.id,
        path: trail_path(request.uri().path(), request.uri().query()),
        label: route.label,
        ip: context.ip.clone(),
        user_agent: context
            .user_agent
            .as_deref()
            .map(app::audit_writer::clip_user_agent),
    })
}

/// What the pipeline learned on the way in, kept for the way out.
pub struct Resolved {
    /// The caller, until it is handed to the handler (`into_caller`).
    pub context: RequestContext,
    /// What the way out needs of it.
    https: bool,
    stale_cookie: bool,
    notice: Option<Notice>,
    lookup: Lookup,
    /// The request came with a bearer token (it has no cookie to set or clear).
    bearer: bool,
    /// The browser sent a notice cookie (to clear once shown).
    notice_carried: bool,
}

/// Reads the caller from the request: the bearer token of a JSON API request (it wins
/// over the cookie), else the session cookie; the client's address and agent.
async fn resolve(
    state: &ServerState,
    headers: &HeaderMap,
    peer: SocketAddr,
    surface: Surface,
) -> Result<Resolved, AppError> {
    let https = request_is_https(state, headers);
    let bearer = surface == Surface::Api && headers.contains_key(header::AUTHORIZATION);
    let mut clearing = Vec::new();
    let token = if bearer {
        // An Authorization header that is not a bearer token is not a cookie request
        // either: it names no session.
        Some(bearer_token(headers).unwrap_or_default())
    } else {
        match session_from_headers(headers, https) {
            SessionCookie::One(token) => Some(token),
            SessionCookie::Absent => None,
            SessionCookie::Duplicated => {
                let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
                clearing = clearing_duplicates(https, host);
                None
            }
        }
    };
    let mut lookup = match token.as_deref() {
        Some(token) => find_live(&state.app, token).await?,
        None => Lookup::default(),
    };
    lookup.clearing = clearing;
    let carried = cookie_from_headers(headers, NOTICE_COOKIE).filter(|value| !value.is_empty());
    let notice = lookup
        .notice
        .or_else(|| carried.as_deref().and_then(Notice::parse));
    let context = RequestContext {
        // A bearer client has no cookie to clear.
        stale_cookie: lookup.stale && !bearer,
        notice,
        session: lookup.session.take(),
        ip: Some(client_ip(state, headers, peer)),
        user_agent: header_text(headers, header::USER_AGENT.as_str()),
        fetch_site: header_text(headers, "sec-fetch-site"),
        https,
    };
    Ok(Resolved {
        https: context.https,
        stale_cookie: context.stale_cookie,
        notice: context.notice,
        context,
        lookup,
        bearer,
        notice_carried: carried.is_some(),
    })
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The client's address: behind a trusted proxy, the last `X-Forwarded-For` entry
/// (the one the proxy added; earlier ones are whatever the client sent); else the
/// peer. Only an address is taken.
fn client_ip(state: &ServerState, headers: &HeaderMap, peer: SocketAddr) -> String {
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match (state.trust_proxy, forwarded_for) {
        (true, Some(forwarded)) => forwarded.to_string(),
        _ => peer.ip().to_string(),
    }
}

/// The `Authorization: Bearer <token>` value, if the request has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl Resolved {
    /// Hands the caller over (moved, not copied) and keeps what the way out needs.
    fn into_caller(mut self) -> (Resolved, RequestContext) {
        let context = std::mem::take(&mut self.context);
        (self, context)
    }

    /// The cookies that follow from the lookup: the actor's new token after a session
    /// on behalf ended, clearing a cookie that names no usable session, or clearing
    /// both of a session cookie sent twice.
    fn session_cookies(&self, state: &ServerState) -> Vec<String> {
        let https = self.https;
        if self.bearer {
            Vec::new()
        } else if !self.lookup.clearing.is_empty() {
            self.lookup.clearing.clone()
        } else if let Some(token) = &self.lookup.reissued {
            vec![session_cookie(token, https, state.app.settings.session_lifetime)]
        } else if self.stale_cookie {
            vec![clearing_cookie(https)]
        } else {
            Vec::new()
        }
    }

    /// What goes back with a refusal: the actor's new token (a bearer client gets it in
    /// a header), and for a server function the notice saying why.
    fn refusal_headers(&self, state: &ServerState, route: &Route) -> Vec<(header::HeaderName, String)> {
        if self.bearer {
            return reissued_header(self.lookup.reissued.as_ref());
        }
        let mut cookies = self.session_cookies(state);
        if route.surface == Surface::ServerFn && self.lookup.notice.is_some() {
            cookies.push(notice_cookie(self.lookup.notice, self.https));
        }
        as_set_cookie(cookies)
    }

    /// The cookies of an answered request. A notice is shown once: on this page, or on
    /// the next one after a redirect; a server function hands a fresh one on.
    fn cookies_out(
        &self,
        state: &ServerState,
        route: &Route,
        response: &Response,
    ) -> Vec<(header::HeaderName, String)> {
        if self.bearer {
            // A bearer client whose session on behalf ended on a request that still
            // answers (the API's description) is handed its actor's new token all the same.
            return reissued_header(self.lookup.reissued.as_ref());
        }
        let mut cookies = self.session_cookies(state);
        let https = self.https;
        match route.surface {
            Surface::ServerFn if self.lookup.notice.is_some() => {
                cookies.push(notice_cookie(self.lookup.notice, https));
            }
            Surface::Page if response.status().is_redirection() && self.notice.is_some() => {
                cookies.push(notice_cookie(self.notice, https));
            }
            Surface::Page if !response.status().is_redirection() && self.notice_carried => {
                cookies.push(notice_cookie(None, https))
            }
            _ => {}
        }
        as_set_cookie(cookies)
    }
}

fn reissued_header(token: Option<&Token>) -> Vec<(header::HeaderName, String)> {
    token
        .map(|token| {
            vec![(
                header::HeaderName::from_static(TOKEN_HEADER),
                token.expose().to_string(),
            )]
        })
        .unwrap_or_default()
}

fn as_set_cookie(cookies: Vec<String>) -> Vec<(header::HeaderName, String)> {
    cookies
        .into_iter()
        .map(|cookie| (header::SET_COOKIE, cookie))
        .collect()
}

/// Adds `headers`, in their order, before any of the same name the response already
/// has (the handler's own cookies come last, so they win).
fn prepend_headers(response: &mut Response, headers: Vec<(header::HeaderName, String)>) {
    let mut names: Vec<header::HeaderName> = headers.iter().map(|(name, _)| name.clone()).collect();
    names.dedup();
    let own: Vec<(header::HeaderName, Vec<HeaderValue>)> = names
        .into_iter()
        .map(|name| {
            let values = match response.headers_mut().entry(&name) {
                header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
                header::Entry::Vacant(_) => Vec::new(),
            };
            (name, values)
        })
        .collect();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    for (name, values) in own {
        for value in values {
            response.headers_mut().append(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_told_apart_by_path() {
        assert_eq!(Route::of("/api/v1/profile").surface, Surface::Api);
        assert_eq!(Route::of("/api/v1").surface, Surface::Api);
        assert_eq!(Route::of("/api/sign_in").surface, Surface::ServerFn);
        assert_eq!(Route::of("/admin/audit.csv").surface, Surface::Download);
        assert_eq!(Route::of("/one-click/1/x").surface, Surface::OneClick);
        assert_eq!(Route::of("/admin/members").surface, Surface::Page);
        assert!(Route::of("/api/whoami").acts_when_ended);
        assert!(!Route::of("/api/sign_out").acts_when_ended);
        assert!(!Route::of("/api/v1/profile").acts_when_ended);
        assert!(!Route::of("/admin/audit.csv").acts_when_ended);
    }

    #[test]
    fn only_bearer_authorization_names_a_token() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn the_pipelines_cookies_come_before_the_handlers_own() {
        let mut response = Response::new(axum::body::Body::empty());
        response
            .headers_mut()
            .append(header::SET_COOKIE, HeaderValue::from_static("own=1"));
        prepend_headers(
            &mut response,
            vec![
                (header::SET_COOKIE, "ours=1".to_string()),
                (header::SET_COOKIE, "ours=2".to_string()),
            ],
        );
        let cookies: Vec<_> = response.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["ours=1", "ours=2", "own=1"]);
    }
}
