//! The member's own area ("My account"): their details and their access history.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{auth::Viewer, error::AppError, ui::Protected};

#[cfg(feature = "ssr")]
pub mod service;

/// One session on behalf of the member, as their access history shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Changes recorded during it (its start and end not counted).
    pub actions: i64,
}

/// The sessions on behalf of the signed-in member (newest first, at most 100).
#[server(prefix = "/api", endpoint = "account/access-history", input = PostUrl)]
pub async fn access_history() -> Result<Vec<AccessRecord>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let session = request.require_session()?;
    service::access_history(&state, session.member.id).await
}

/// The member area's links.
#[component]
pub fn AccountNav() -> impl IntoView {
    view! {
        <nav class="account-nav" aria-label="My account">
            <a href="/">"Profile"</a>
            <a href="/account/orders">"Orders"</a>
            <a href="/account/access-history">"Access history"</a>
        </nav>
    }
}

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="My account"/>
        <Protected render=|viewer: Viewer| view! { <AccountNav/> <AccountSummary viewer/> }/>
    }
}

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
                <p class="muted">"Every time someone logged in on your behalf: who, when, for how long, why, and how many changes they made."</p>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match history.await {
                            Ok(rows) if rows.is_empty() => view! {
                                <p>"Nobody has logged in on your behalf."</p>
                            }
                            .into_any(),
                            Ok(rows) => view! { <AccessTable rows/> }.into_any(),
                            Err(error) => view! { <crate::ui::ErrorPanel error/> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        }/>
    }
}

#[component]
fn AccessTable(rows: Vec<AccessRecord>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data-table" aria-label="Access history">
                <thead>
                    <tr>
                        <th scope="col">"Who"</th>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Ended"</th>
                        <th scope="col">"Minutes"</th>
                        <th scope="col">"Reason"</th>
                        <th scope="col">"Changes"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| {
                            let ended = match (row.ended, row.end_reason) {
                                (Some(at), Some(why)) => format!("{at} ({why})"),
                                (Some(at), None) => at,
                                (None, _) => "Still running".to_string(),
                            };
                            view! {
                                <tr>
                                    <td>{row.actor_name}</td>
                                    <td>{row.started}</td>
                                    <td>{ended}</td>
                                    <td class="numeric">{row.minutes}</td>
                                    <td class="wrap">{row.reason}</td>
                                    <td class="numeric">{row.actions}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
