//! The audit viewer (`/admin/audit`) and a session on behalf's timeline
//! (`/admin/audit/sessions/{id}`), for editors and super users.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    audit::{list_audit, session_timeline, AuditFilter, AuditRow, FilterParams},
    audit_action::AuditAction,
    context::Viewer,
    ui::{Column, DataTable, ErrorPanel, Gate, Gated},
};

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_query_map();
    let raw = move || {
        let p = params.read();
        (
            (p.get("actor"), p.get("subject"), p.get("action")),
            (p.get("from"), p.get("to"), p.get("session")),
            p.get("before").and_then(|b| b.parse::<i64>().ok()),
        )
    };
    let records = Resource::new(raw, |((actor, subject, action), (from, to, session), before)| {
        list_audit(actor, subject, action, from, to, session, before)
    });
    view! {
        <Title text="Audit trail"/>
        <Gated gate=Gate::Audit render=move |_viewer: Viewer| {
            let ((actor, subject, action), (from, to, session), before) = raw();
            let filter = AuditFilter::parse(&FilterParams {
                actor: actor.clone(),
                subject: subject.clone(),
                action: action.clone(),
                from: from.clone(),
                to: to.clone(),
                session: session.clone(),
            })
            .unwrap_or_default();
            let query = filter.query_string();
            let export = if query.is_empty() { "/admin/audit.csv".to_string() } else { format!("/admin/audit.csv?{query}") };
            view! {
                <section class="card">
                    <h1>"Audit trail"</h1>
                    <p class="muted">"Every change and sign-in, newest first. Records cannot be changed; each one is chained to the one before it."</p>
                    <form class="toolbar audit-filters" method="get" action="/admin/audit">
                        <FilterField id="audit-actor" label="Actor ID" name="actor" value=actor.unwrap_or_default()/>
                        <FilterField id="audit-subject" label="Subject ID" name="subject" value=subject.unwrap_or_default()/>
                        <div class="field">
                            <label for="audit-action">"Action"</label>
                            <select id="audit-action" name="action">
                                <option value="">"Any"</option>
                                {AuditAction::ALL
                                    .iter()
                                    .map(|a| a.as_str())
                                    .map(|a| view! { <option value=a selected=action.as_deref() == Some(a)>{a}</option> })
                                    .collect_view()}
                            </select>
                        </div>
                        <FilterField id="audit-from" label="From" name="from" kind="date" value=from.unwrap_or_default()/>
                        <FilterField id="audit-to" label="To" name="to" kind="date" value=to.unwrap_or_default()/>
                        <FilterField id="audit-session" label="Session on behalf" name="session" value=session.unwrap_or_default()/>
                        <div class="filter-buttons">
                            <button type="submit" class="button primary">"Filter"</button>
                            <a class="button" href="/admin/audit">"Clear"</a>
                            <a class="button" href=export download="">"Export CSV"</a>
                        </div>
                    </form>
                    <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                        {move || {
                            let query = query.clone();
                            Suspend::new(async move {
                                match records.await {
                                    Ok(page) => {
                                        let older = page.older.map(|id| {
                                            if query.is_empty() { format!("/admin/audit?before={id}") } else { format!("/admin/audit?{query}&before={id}") }
                                        });
                                        let newest = before.map(|_| {
                                            if query.is_empty() { "/admin/audit".to_string() } else { format!("/admin/audit?{query}") }
                                        });
                                        view! {
                                            <RecordTable records=page.records label="Audit records"/>
                                            <nav class="pagination" aria-label="Pages">
                                                {newest.map(|href| view! { <a href=href>"Newest"</a> })}
                                                {older.map(|href| view! { <a href=href>"Older"</a> })}
                                            </nav>
                                        }
                                        .into_any()
                                    }
                                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                                }
                            })
                        }}
                    </Suspense>
                </section>
            }
            .into_any()
        }/>
    }
}

#[component]
fn FilterField(
    id: &'static str,
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    value: String,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id name=name type=kind value=value size="10"/>
        </div>
    }
}

#[component]
fn RecordTable(records: Vec<AuditRow>, label: &'static str) -> impl IntoView {
    if records.is_empty() {
        return view! { <p>"No records match."</p> }.into_any();
    }
    let who = |person: Option<(i64, String)>| match person {
        Some((id, name)) => {
            view! { <a href=format!("/admin/members/{id}")>{format!("{name} (#{id})")}</a> }.into_any()
        }
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };
    view! {
        <DataTable label columns=RECORD_COLUMNS class="data-table audit-table">
            {records
                .into_iter()
                .map(|r| view! {
                    <tr>
                        <td>{r.at}</td>
                        <td>{who(r.actor)}</td>
                        <td>{who(r.subject)}</td>
                        <td>{r.session_id.map(|id| view! {
                            <a href=format!("/admin/audit/sessions/{id}")>{format!("Session {id}")}</a>
                        })}</td>
                        <td><code>{r.action}</code></td>
                        <td>{r.object}</td>
                        <td class="wrap"><code>{r.details}</code></td>
                        <td>{r.ip}</td>
                    </tr>
                })
                .collect_view()}
        </DataTable>
    }
    .into_any()
}

/// The headings of a list of audit records.
const RECORD_COLUMNS: &[Column] = &[
    Column::Text("Time"),
    Column::Text("Actor"),
    Column::Text("Subject"),
    Column::Text("On behalf"),
    Column::Text("Action"),
    Column::Text("Object"),
    Column::Text("Details"),
    Column::Text("IP"),
];

#[component]
pub fn SessionTimelinePage() -> impl IntoView {
    let params = use_params_map();
    let timeline = Resource::new(
        move || {
            params
                .read()
                .get("id")
                .and_then(|id| id.parse::<i64>().ok())
                .unwrap_or(0)
        },
        session_timeline,
    );
    view! {
        <Title text="Session on behalf"/>
        <Gated gate=Gate::Audit render=move |_viewer: Viewer| {
            view! {
                <section class="card">
                    <p><a href="/admin/audit">"← Audit trail"</a></p>
                    <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match timeline.await {
                                Ok(t) => view! {
                                    <h1>{format!("Session on behalf {}", t.session_id)}</h1>
                                    <dl class="details">
                                        <dt>"Acting"</dt>
                                        <dd>{format!("{} (#{})", t.actor.1, t.actor.0)}</dd>
                                        <dt>"On behalf of"</dt>
                                        <dd>{format!("{} (#{})", t.member.1, t.member.0)}</dd>
                                        <dt>"Reason"</dt>
                                        <dd>{t.reason}</dd>
                                        <dt>"Started"</dt>
                                        <dd>{t.started}</dd>
                                        <dt>"Ended"</dt>
                                        <dd>{match (t.ended, t.end_reason) {
                                            (Some(at), Some(why)) => format!("{at} ({why})"),
                                            (Some(at), None) => at,
                                            (None, _) => "Still running".to_string(),
                                        }}</dd>
                                    </dl>
                                    <h2 class="section-title">"Timeline"</h2>
                                    <RecordTable records=t.records label="Timeline"/>
                                }
                                .into_any(),
                                Err(error) => {
                                    #[cfg(feature = "ssr")]
                                    crate::server::set_status(error.status_code());
                                    view! { <ErrorPanel error/> }.into_any()
                                }
                            }
                        })}
                    </Suspense>
                </section>
            }
            .into_any()
        }/>
    }
}
