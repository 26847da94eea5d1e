//! Signing in and out, the profile, and login on behalf (Kuroco's `Login`,
//! `Login::profile`, `alias_login`): the same services as the web pages.

use app::{
    auth::service as auth,
    context::CurrentSession,
    error::AppError,
    on_behalf::{elevate, service as on_behalf, targets},
    password::Password,
    session::{clearing_cookie, find_live, session_cookie, token::Token},
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    extract::{with_cookie, ApiError, ApiJson, ApiQuery, ApiResult},
    types::*,
    Errors,
};
use crate::{session::Caller, state::ServerState};

/// Whom a brand-new token acts as (read back exactly as the next request will), and
/// the session cookie that carries it for `lifetime`.
async fn switched(
    state: &ServerState,
    caller: &Caller,
    token: &Token,
    lifetime: i64,
) -> ApiResult<(CurrentSession, String)> {
    let found = find_live(&state.app, token.expose()).await?;
    match found.session {
        // A session on behalf that ended before its first answer (its grant was
        // revoked meanwhile, say): the actor is back in their own session, as on any
        // request that finds its session on behalf over.
        Some(session) if found.reissued.is_none() => {
            Ok((session, session_cookie(token, caller.context.https, lifetime)))
        }
        Some(_) => {
            let own = found.reissued.as_ref().unwrap_or(token);
            let cookie = session_cookie(own, caller.context.https, state.app.settings.session_lifetime);
            Err(ended_meanwhile(Some(own), cookie))
        }
        None if found.ended_on_behalf => Err(ended_meanwhile(None, clearing_cookie(caller.context.https))),
        None => Err(ApiError::from(AppError::Unauthenticated)),
    }
}

/// 409 `on_behalf_ended`, with the actor's own new token (if any) in `Behalf-Token`
/// and the cookie that goes with it.
fn ended_meanwhile(own: Option<&Token>, cookie: String) -> ApiError {
    let mut headers = Vec::new();
    if let Some(token) = own {
        if let Ok(value) = axum::http::HeaderValue::from_str(token.expose()) {
            headers.push((
                axum::http::HeaderName::from_static(crate::security::TOKEN_HEADER),
                value,
            ));
        }
    }
    if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
        headers.push((axum::http::header::SET_COOKIE, value));
    }
    ApiError {
        error: AppError::OnBehalfEnded,
        headers,
    }
}

/// Sign in with email and password. Throttled per account and per client address.
#[utoipa::path(post, path = "/api/v1/login", tag = "authentication",
    request_body = LoginRequest,
    responses((status = 200, description = "Signed in; the token is also set as the session cookie", body = TokenResponse), Errors))]
pub async fn login(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let token = auth::sign_in(
        &state.app,
        &caller.context,
        &body.email,
        Password::new(body.password),
    )
    .await?;
    let (session, cookie) = switched(&state, &caller, &token, state.app.settings.session_lifetime).await?;
    Ok(with_cookie(
        StatusCode::OK,
        TokenResponse::new(token.expose(), &session),
        &cookie,
    ))
}

/// End the session (on behalf: the session on behalf and the actor's own).
#[utoipa::path(post, path = "/api/v1/logout", tag = "authentication",
    responses((status = 204, description = "Signed out"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn logout(State(state): State<ServerState>, caller: Caller) -> ApiResult<Response> {
    auth::sign_out(&state.app, &caller.context).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = clearing_cookie(caller.context.https).parse() {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// `aliaslogin_target` adds the members the caller may log in on behalf of.
    #[param(max_length = 32)]
    pub basic_info: Option<String>,
    /// With `basic_info=aliaslogin_target`: the `aliaslogin_target_next_cursor` of the
    /// previous page.
    #[param(max_length = 20)]
    pub cursor: Option<String>,
    /// With `basic_info=aliaslogin_target`: targets per page (1 to 100, default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Who the token acts as, and on whose behalf.
#[utoipa::path(get, path = "/api/v1/profile", tag = "authentication", params(ProfileQuery),
    responses((status = 200, body = Profile), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn profile(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ProfileQuery>,
) -> ApiResult<Json<Profile>> {
    let session = caller.context.require_session()?;
    let mut profile = Profile {
        member: Me::from(&session.member),
        on_behalf: OnBehalfInfo::of(session),
        aliaslogin_target: None,
        aliaslogin_target_next_cursor: None,
    };
    match query.basic_info.as_deref() {
        None | Some("") => {}
        Some("aliaslogin_target") => {
            let after = super::cursor(&query.cursor)?;
            let limit = super::limit(query.limit, 50, targets::MAX_TARGETS)?;
            let page = targets::aliaslogin_targets(&state.app, &caller.context, after, limit).await?;
            profile.aliaslogin_target = Some(
                page.targets
                    .into_iter()
                    .map(|t| AliasTargetView {
                        id: t.id,
                        display_name: t.display_name,
                        email: t.email,
                    })
                    .collect(),
            );
            profile.aliaslogin_target_next_cursor = page.next.map(|id| id.to_string());
        }
        Some(_) => {
            return Err(AppError::validation("basic_info", "basic_info takes aliaslogin_target.").into())
        }
    }
    Ok(Json(profile))
}

/// Log in on behalf of a member: the caller's own password again, a reason, the rule
/// and the lockout, exactly as in the web window. The caller's token ends; the new
/// one acts as the member.
#[utoipa::path(post, path = "/api/v1/alias_login", tag = "authentication",
    request_body = AliasLoginRequest,
    responses((status = 200, body = AliasLoginResponse), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn alias_login(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<AliasLoginRequest>,
) -> ApiResult<Response> {
    let token = on_behalf::start(
        &state.app,
        &caller.context,
        body.member_id,
        Password::new(body.password),
        &body.reason,
        body.mode,
    )
    .await?;
    on_behalf_answer(&state, &caller, &token).await
}

/// Elevate the caller's view-only session on behalf to act: the caller's own
/// password again (the same check and lockout as `alias_login`) and a reason, kept in
/// the audit trail. The answer carries a new token; the old one is dead from then on.
#[utoipa::path(post, path = "/api/v1/alias_elevate", tag = "authentication",
    request_body = AliasElevateRequest,
    responses((status = 200, body = AliasLoginResponse), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn alias_elevate(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<AliasElevateRequest>,
) -> ApiResult<Response> {
    let password = Password::new(body.password);
    let token = elevate::elevate(&state.app, &caller.context, password, &body.reason).await?;
    on_behalf_answer(&state, &caller, &token).await
}

/// The answer of a start or an elevation: the new token, its session on behalf and
/// mode, and the same token as the session cookie.
async fn on_behalf_answer(state: &ServerState, caller: &Caller, token: &Token) -> ApiResult<Response> {
    let (session, cookie) = switched(state, caller, token, state.app.settings.on_behalf_max_duration).await?;
    let on_behalf = OnBehalfInfo::of(&session).ok_or_else(|| ApiError::from(AppError::Internal))?;
    let TokenResponse {
        token: text,
        expires_at,
        member,
    } = TokenResponse::new(token.expose(), &session);
    Ok(with_cookie(
        StatusCode::OK,
        AliasLoginResponse {
            token: text,
            mode: on_behalf.mode,
            session_id: on_behalf.session_id,
            expires_at,
            member,
            on_behalf,
        },
        &cookie,
    ))
}

/// Leave the session on behalf: a fresh token for the actor's own session.
#[utoipa::path(post, path = "/api/v1/alias_logout", tag = "authentication",
    responses((status = 200, body = TokenResponse), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn alias_logout(State(state): State<ServerState>, caller: Caller) -> ApiResult<Response> {
    let (token, _) = on_behalf::leave(&state.app, &caller.context).await?;
    let Some(token) = token else {
        // The actor's own session is over too: there is no one to return to.
        return Err(AppError::Unauthenticated.into());
    };
    let (session, cookie) = switched(&state, &caller, &token, state.app.settings.session_lifetime).await?;
    Ok(with_cookie(
        StatusCode::OK,
        TokenResponse::new(token.expose(), &session),
        &cookie,
    ))
}

/// Change the caller's own password. The current one is checked under the sign-in
/// throttle; outstanding one-click links for the caller, and those they created, are
/// revoked. Never in a session on behalf.
#[utoipa::path(post, path = "/api/v1/profile/password", tag = "authentication",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn change_password(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    auth::change_password(
        &state.app,
        &caller.context,
        Password::new(body.current_password),
        Password::new(body.new_password),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
