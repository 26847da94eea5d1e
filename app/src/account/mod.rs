//! The member's own area ("My account"): their details and their access history.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    context::Viewer,
    error::AppError,
    mode::{Access, Mode, VIEW_ONLY_REASON},
    ui::{on_behalf_limit, AccountNav, Column, DataTable, ListOrEmpty, LockedReason, Protected},
};

/// Beside the Sessions page's End buttons in a session on behalf (a protected action).
pub const SESSIONS_PROTECTED_REASON: &str =
    "Not on someone's behalf: only the member ends their own sessions.";

#[cfg(feature = "ssr")]
pub mod service;

/// One session on behalf of the member, as their access history shows it (the JSON
/// API documents it as `AccessItem`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(as = AccessItem))]
pub struct AccessRecord {
    pub session_id: i64,
    pub actor_name: String,
    pub started: String,
    /// "Still running" while it is.
    pub ended: Option<String>,
    /// Why it ended (left, expired, revoked, signed out, replaced).
    pub end_reason: Option<String>,
    /// Minutes it lasted (so far).
    pub minutes: i64,
    pub reason: String,
    /// Changes recorded during it (its start, end, elevation, views and refusals not counted).
    pub actions: i64,
    /// `view` or `act` (as it ended, or is now).
    pub mode: crate::mode::Mode,
    /// What was viewed in it (the view trail), by the pages' names ("Orders"), or the
    /// path where a read has no name, each once.
    pub viewed: Vec<String>,
}

/// One of the member's live sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: i64,
    pub device: String,
    pub ip: Option<String>,
    pub started: String,
    pub last_seen: String,
    /// The session this page was loaded in.
    pub current: bool,
    /// Set for a session on behalf of the member: who is acting.
    pub on_behalf_by: Option<String>,
    /// The member's own session, waiting while they act on someone else's behalf.
    pub waiting: bool,
}

/// Changes the signed-in member's display name.
#[server(prefix = "/api", endpoint = "account/profile", input = PostUrl)]
pub async fn update_profile(display_name: String) -> Result<String, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    crate::members::directory::update_own_name(&state, &request, &display_name).await
}

/// The signed-in member's live sessions.
#[server(prefix = "/api", endpoint = "account/sessions", input = PostUrl)]
pub async fn my_sessions() -> Result<Vec<SessionView>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::sessions(&state, &request).await
}

/// Ends one of the signed-in member's other sessions.
#[server(prefix = "/api", endpoint = "account/revoke-session", input = PostUrl)]
pub async fn revoke_session(id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::revoke(&state, &request, id).await
}

/// The sessions on behalf of the signed-in member (newest first, at most 100).
#[server(prefix = "/api", endpoint = "account/access-history", input = PostUrl)]
pub async fn access_history() -> Result<Vec<AccessRecord>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::access_history(&state, &request).await
}

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="My account"/>
        <Protected render=|viewer: Viewer| {
            let name = viewer.display_name.clone();
            let locked = on_behalf_limit(&viewer, Access::Write).is_some();
            view! { <AccountNav/> <AccountSummary viewer/> <ProfileForm name locked/> }
        }/>
    }
}

/// The display name form; `locked`: shown disabled, with the reason (a view-only
/// session on behalf).
#[component]
fn ProfileForm(name: String, locked: bool) -> impl IntoView {
    let action = ServerAction::<UpdateProfile>::new();
    // The header and the summary show the name too: load the page afresh.
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            let _ = window().location().reload();
        }
    });
    let error = Signal::derive(move || action.value().get().and_then(Result::err).map(|e| e.to_string()));
    view! {
        <section class="card">
            <h2 class="section-title">"Profile"</h2>
            <crate::ui::PostForm
                action
                class=if locked { "form narrow-form locked" } else { "form narrow-form" }
                novalidate=true
                input=|ev| UpdateProfile { display_name: crate::ui::submitted_field(ev, "display_name") }
            >
                <crate::ui::TextField
                    id="profile-name"
                    label="Display name"
                    name="display_name"
                    value=name
                    maxlength=100
                    required=true
                    disabled=locked
                    error
                />
                <div>
                    <button
                        type="submit"
                        class="button primary"
                        disabled=move || locked || action.pending().get()
                        aria-describedby=locked.then_some("profile-locked")
                    >
                        "Save name"
                    </button>
                </div>
                {locked.then(|| view! { <LockedReason id="profile-locked" text=VIEW_ONLY_REASON/> })}
            </crate::ui::PostForm>
        </section>
    }
}

#[component]
pub fn SessionsPage() -> impl IntoView {
    let revoke = ServerAction::<RevokeSession>::new();
    let sessions = Resource::new(move || revoke.version().get(), |_| my_sessions());
    view! {
        <Title text="Sessions"/>
        <Protected render=move |viewer: Viewer| {
            let locked = on_behalf_limit(&viewer, Access::Protected).is_some();
            view! {
                <AccountNav/>
                <section class="card">
                    <h1>"Sessions"</h1>
                    <p class="muted">"Where your account is signed in now, including anyone acting on your behalf. End any you do not recognise."</p>
                    {locked.then(|| view! { <LockedReason id="sessions-locked" text=SESSIONS_PROTECTED_REASON/> })}
                    {move || revoke.value().get().and_then(Result::err).map(|error| view! { <crate::ui::ErrorPanel error/> })}
                    <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match sessions.await {
                                Ok(rows) => view! { <SessionTable rows revoke locked/> }.into_any(),
                                Err(error) => view! { <crate::ui::ErrorPanel error/> }.into_any(),
                            }
                        })}
                    </Suspense>
                </section>
            }
        }/>
    }
}

/// The member's sessions; `locked`: their End buttons disabled (on behalf, ending
/// the member's sessions is a protected action).
#[component]
fn SessionTable(rows: Vec<SessionView>, revoke: ServerAction<RevokeSession>, locked: bool) -> impl IntoView {
    view! {
        <DataTable label="Sessions" columns=SESSION_COLUMNS>
            {rows
                .into_iter()
                .map(|row| {
                    let kind = match (&row.on_behalf_by, row.current, row.waiting) {
                        (Some(by), _, _) => format!("on behalf, by {by}"),
                        (None, true, _) => "this session".to_string(),
                        (None, false, true) => "yours, waiting while you act on someone's behalf".to_string(),
                        (None, false, false) => "yours".to_string(),
                    };
                    let id = row.id;
                    view! {
                        <tr>
                            <td>{row.device}</td>
                            <td>{row.ip}</td>
                            <td>{row.started}</td>
                            <td>{row.last_seen}</td>
                            <td>{kind}</td>
                            <td>
                                {(!row.current).then(|| view! {
                                    <ActionForm action=revoke attr:class="inline-form">
                                        <input type="hidden" name="id" value=id/>
                                        <button
                                            type="submit"
                                            class="button"
                                            aria-label=format!("End session {id}")
                                            disabled=locked
                                            aria-describedby=locked.then_some("sessions-locked")
                                        >
                                            "End"
                                        </button>
                                    </ActionForm>
                                })}
                            </td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
}

/// The headings of the member's sessions.
const SESSION_COLUMNS: &[Column] = &[
    Column::Text("Device"),
    Column::Text("IP"),
    Column::Text("Started"),
    Column::Text("Last seen"),
    Column::Text("Kind"),
    Column::Actions,
];

#[component]
fn AccountSummary(viewer: Viewer) -> impl IntoView {
    view! {
        <section class="card">
            <h1>"My account"</h1>
            <p class="lead">"Welcome, " {viewer.display_name.clone()} "."</p>
            <dl class="details">
                <dt>"Name"</dt>
                <dd>{viewer.display_name.clone()}</dd>
                <dt>"Email"</dt>
                <dd>{viewer.email.clone()}</dd>
                <dt>"Role"</dt>
                <dd>{viewer.role.label()}</dd>
                <dt>"Management screens"</dt>
                <dd>{if viewer.admin_access { "Allowed" } else { "Not allowed" }}</dd>
                <dt>"Member since"</dt>
                <dd>{viewer.member_since.clone()}</dd>
                <dt>"Last sign-in"</dt>
                <dd>{viewer.last_sign_in.clone().unwrap_or_else(|| "—".to_string())}</dd>
            </dl>
        </section>
    }
}

#[component]
pub fn AccessHistoryPage() -> impl IntoView {
    // Created here, outside `Protected` (see its note).
    let history = Resource::new(|| (), |_| access_history());
    view! {
        <Title text="Access history"/>
        <Protected render=move |_viewer: Viewer| view! {
            <AccountNav/>
            <section class="card">
                <h1>"Access history"</h1>
                <p class="muted">"Every time someone logged in on your behalf: who, when, for how long, why, whether they only viewed or acted, what they viewed, and how many changes they made."</p>
                <ListOrEmpty
                    resource=history
                    is_empty=Vec::is_empty
                    empty=|| view! { <p>"Nobody has logged in on your behalf."</p> }
                    render={|rows: Vec<AccessRecord>| view! { <AccessTable rows/> }.into_any()}
                />
            </section>
        }/>
    }
}

#[component]
fn AccessTable(rows: Vec<AccessRecord>) -> impl IntoView {
    view! {
        <DataTable label="Access history" columns=ACCESS_COLUMNS>
            {rows
                .into_iter()
                .map(|row| {
                    let ended = match (row.ended, row.end_reason) {
                        (Some(at), Some(why)) => format!("{at} ({why})"),
                        (Some(at), None) => at,
                        (None, _) => "Still running".to_string(),
                    };
                    let mode = match row.mode {
                        Mode::View => "View only",
                        Mode::Act => "Acted",
                    };
                    let viewed = (!row.viewed.is_empty())
                        .then(|| view! { <span class="viewed">{format!("Viewed: {}", row.viewed.join(", "))}</span> });
                    view! {
                        <tr>
                            <td>{row.actor_name}</td>
                            <td>{row.started}</td>
                            <td>{ended}</td>
                            <td class="numeric">{row.minutes}</td>
                            <td class="wrap">{mode} {viewed}</td>
                            <td class="wrap">{row.reason}</td>
                            <td class="numeric">{row.actions}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
}

/// The headings of the access history.
const ACCESS_COLUMNS: &[Column] = &[
    Column::Text("Who"),
    Column::Text("Started"),
    Column::Text("Ended"),
    Column::Text("Minutes"),
    Column::Text("Mode"),
    Column::Text("Reason"),
    Column::Text("Changes"),
];
