//! The oversight views: `/admin/impersonations` (live sessions on behalf, kept up to
//! date by polling, and their history) and the blade's Sessions panel.

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    context::Viewer,
    oversight::{
        impersonations, member_sessions, EndAllImpersonations, EndImpersonation, Impersonation,
        MemberSession, RevokeMemberSessions,
    },
    ui::{Column, DataTable, ErrorPanel, Gate, Gated, ListOrEmpty},
};

/// How often the live list asks again (polling costs one small request; a push
/// channel would hold a connection per open page).
const POLL: Duration = Duration::from_secs(5);

/// "4 min 05 s" for a number of seconds.
pub fn time_left(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds >= 60 {
        format!("{} min {:02} s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds} s")
    }
}

#[component]
pub fn ImpersonationsPage() -> impl IntoView {
    let history = RwSignal::new(false);
    let tick = RwSignal::new(0u32);
    let end = ServerAction::<EndImpersonation>::new();
    let end_all = ServerAction::<EndAllImpersonations>::new();
    let list = Resource::new(
        move || {
            (
                history.get(),
                tick.get(),
                end.version().get(),
                end_all.version().get(),
            )
        },
        |(history, _, _, _)| impersonations(history),
    );
    // In the browser only: ask again every few seconds while the page is open.
    Effect::new(move |_| {
        let handle = set_interval_with_handle(move || tick.update(|t| *t += 1), POLL).ok();
        on_cleanup(move || {
            if let Some(handle) = handle {
                handle.clear();
            }
        });
    });
    view! {
        <Title text="Sessions on behalf"/>
        <Gated gate=Gate::Oversee render=move |_viewer: Viewer| view! {
            <section class="card">
                <h1>"Sessions on behalf"</h1>
                <p class="muted">
                    "Who is acting on whose behalf right now. End one and its actor is back in their own session at their next request. The list updates by itself."
                </p>
                <div class="tabs" role="tablist" aria-label="Sessions on behalf">
                    <button
                        type="button"
                        role="tab"
                        class="tab"
                        aria-selected=move || (!history.get()).to_string()
                        on:click=move |_| history.set(false)
                    >
                        "Live"
                    </button>
                    <button
                        type="button"
                        role="tab"
                        class="tab"
                        aria-selected=move || history.get().to_string()
                        on:click=move |_| history.set(true)
                    >
                        "History"
                    </button>
                </div>
                {move || end.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
                {move || end_all.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
                {move || end_all.value().get().and_then(Result::ok).map(|count| view! {
                    <p class="notice notice-success" role="status">{format!("Ended {count} sessions on behalf.")}</p>
                })}
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match list.await {
                            Err(error) => view! { <ErrorPanel error/> }.into_any(),
                            Ok(list) => {
                                let live = !history.get_untracked();
                                let count = list.rows.len();
                                view! {
                                    {(live && list.can_end_all && count > 0).then(|| view! {
                                        <ActionForm action=end_all attr:class="inline-form end-all">
                                            <button type="submit" class="button danger">
                                                {format!("End all ({count})")}
                                            </button>
                                        </ActionForm>
                                    })}
                                    <ImpersonationTable rows=list.rows live end/>
                                }
                                .into_any()
                            }
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}

#[component]
fn ImpersonationTable(
    rows: Vec<Impersonation>,
    live: bool,
    end: ServerAction<EndImpersonation>,
) -> impl IntoView {
    if rows.is_empty() {
        let text = if live {
            "No one is acting on anyone's behalf now."
        } else {
            "No session on behalf has ended yet."
        };
        return view! { <p class="muted empty">{text}</p> }.into_any();
    }
    let (label, columns) = if live {
        ("Live sessions on behalf", LIVE_COLUMNS)
    } else {
        ("Ended sessions on behalf", ENDED_COLUMNS)
    };
    view! {
        <DataTable label columns>
            {rows
                .into_iter()
                .map(|row| {
                    let id = row.id;
                    let when = if live {
                        time_left(row.seconds_left)
                    } else {
                        format!(
                            "{} ({})",
                            row.ended.clone().unwrap_or_default(),
                            row.end_reason.clone().unwrap_or_default()
                        )
                    };
                    view! {
                        <tr>
                            <td>
                                <a href=format!("/admin/members/{}", row.actor_id)>{row.actor_name}</a>
                                " "
                                <span class="badge">{row.actor_role.label()}</span>
                            </td>
                            <td><a href=format!("/admin/members/{}", row.member_id)>{row.member_name}</a></td>
                            <td>{row.reason}</td>
                            <td>{row.started}</td>
                            <td>{when}</td>
                            <td>
                                <a class="button small" href=format!("/admin/audit/sessions/{id}")>"Timeline"</a>
                                {row.can_end.then(|| view! {
                                    <ActionForm action=end attr:class="inline-form">
                                        <input type="hidden" name="id" value=id/>
                                        <button type="submit" class="button danger small" aria-label=format!("End session on behalf {id}")>"End"</button>
                                    </ActionForm>
                                })}
                            </td>
                        </tr>
                    }
                })
                .collect_view()}
        </DataTable>
    }
    .into_any()
}

/// The headings of the live sessions on behalf, and of the ended ones.
const LIVE_COLUMNS: &[Column] = &[
    Column::Text("Actor"),
    Column::Text("Member"),
    Column::Text("Reason"),
    Column::Text("Started"),
    Column::Text("Time left"),
    Column::Actions,
];
const ENDED_COLUMNS: &[Column] = &[
    Column::Text("Actor"),
    Column::Text("Member"),
    Column::Text("Reason"),
    Column::Text("Started"),
    Column::Text("Ended"),
    Column::Actions,
];

/// The headings of a member's sessions.
const SESSION_COLUMNS: &[Column] = &[
    Column::Text("Device"),
    Column::Text("IP"),
    Column::Text("Last seen"),
    Column::Text("Kind"),
    Column::Actions,
];

/// The blade's Sessions panel for member `member_id`: their live sessions, End for
/// one, End all.
#[component]
pub fn MemberSessionsPanel(member_id: i64) -> impl IntoView {
    let revoke = ServerAction::<RevokeMemberSessions>::new();
    let sessions = Resource::new(
        move || revoke.version().get(),
        move |_| member_sessions(member_id),
    );
    view! {
        <section class="member-sessions" aria-labelledby="member-sessions-title">
            <h3 id="member-sessions-title">"Sessions"</h3>
            <p class="muted">"Where this member is signed in, and who is acting on their behalf. Ending all also ends the sessions on behalf on this account."</p>
            {move || revoke.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            <ListOrEmpty
                resource=sessions
                is_empty=Vec::is_empty
                empty=|| view! { <p class="muted">"No live sessions."</p> }
                render={move |rows: Vec<MemberSession>| view! { <SessionTable rows member_id revoke/> }.into_any()}
            />
        </section>
    }
}

/// A member's live sessions, each with End, and End all under them.
#[component]
fn SessionTable(
    rows: Vec<MemberSession>,
    member_id: i64,
    revoke: ServerAction<RevokeMemberSessions>,
) -> impl IntoView {
    view! {
        <DataTable label="The member's sessions" columns=SESSION_COLUMNS>
            {rows.into_iter().map(|row| {
                let id = row.id;
                let kind = match (&row.on_behalf_by, row.waiting) {
                    (Some(by), _) => format!("on behalf, by {by}"),
                    (None, true) => "own, waiting while they act on someone's behalf".to_string(),
                    (None, false) => "own".to_string(),
                };
                view! {
                    <tr>
                        <td>{row.device}</td>
                        <td>{row.ip}</td>
                        <td>{row.last_seen}</td>
                        <td>{kind}</td>
                        <td>
                            <button
                                type="button"
                                class="button danger small"
                                aria-label=format!("End session {id}")
                                on:click=move |_| { revoke.dispatch(RevokeMemberSessions { member_id, session_id: id }); }
                            >
                                "End"
                            </button>
                        </td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
        <button
            type="button"
            class="button danger"
            on:click=move |_| { revoke.dispatch(RevokeMemberSessions { member_id, session_id: 0 }); }
        >
            "End all sessions"
        </button>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_in_minutes_and_seconds() {
        assert_eq!(time_left(0), "0 s");
        assert_eq!(time_left(-5), "0 s");
        assert_eq!(time_left(59), "59 s");
        assert_eq!(time_left(245), "4 min 05 s");
    }
}
