//! The member's **Access** page (`/account/access`): their setting (let support staff
//! in by their role, or be asked first), the requests for access and their answers,
//! the grants they gave, a form to grant access, and the notices. A lazily loaded page
//! (`lib.rs`): none of it is in the first download. The region **Someone is signed in
//! on your behalf** is in `presence_ui`.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    consent::{
        load_access, presence_ui::role_words, AccessOverview, AnswerRequest, CreateGrant, GranteeOption,
        MarkNoticeRead, NoticeView, RequestStatus, RequestView, RevokeGrant, SetRoleGrants,
    },
    context::Viewer,
    error::AppError,
    grant::{GrantDuration, GrantView, RoleGrants},
    mode::Mode,
    ui::{AccountNav, Column, DataTable, ErrorPanel, Protected},
};

/// "View only" or "Act": a mode as the consent forms and lists name it.
pub fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::View => "View only",
        Mode::Act => "Act",
    }
}

/// **Mode**: a select of the modes, posted as `mode` (View only first, the default).
#[component]
pub fn ModeSelect(id: &'static str) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>"Mode"</label>
            <select id=id name="mode">
                {Mode::ALL
                    .into_iter()
                    .map(|mode| view! { <option value=mode.as_str()>{mode_label(mode)}</option> })
                    .collect_view()}
            </select>
        </div>
    }
}

/// **Duration**: a select of the durations, posted as `duration` (1 hour first).
#[component]
pub fn DurationSelect(id: &'static str) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>"Duration"</label>
            <select id=id name="duration">
                {GrantDuration::ALL
                    .into_iter()
                    .map(|d| view! { <option value=d.as_str()>{d.label()}</option> })
                    .collect_view()}
            </select>
        </div>
    }
}

/// The error of an action's last run, if it failed.
fn action_error<T>(
    value: impl Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
) -> impl IntoView
where
    T: Send + Sync + 'static,
{
    move || {
        value
            .get()
            .and_then(Result::err)
            .map(|error| view! { <ErrorPanel error/> })
    }
}

/// The page's actions: after each, the page's data loads again.
#[derive(Clone, Copy)]
struct Actions {
    setting: ServerAction<SetRoleGrants>,
    answer: ServerAction<AnswerRequest>,
    grant: ServerAction<CreateGrant>,
    revoke: ServerAction<RevokeGrant>,
    read: ServerAction<MarkNoticeRead>,
}

impl Actions {
    fn new() -> Self {
        Actions {
            setting: ServerAction::new(),
            answer: ServerAction::new(),
            grant: ServerAction::new(),
            revoke: ServerAction::new(),
            read: ServerAction::new(),
        }
    }

    /// Changes each time one of them has run.
    fn version(self) -> usize {
        self.setting.version().get()
            + self.answer.version().get()
            + self.grant.version().get()
            + self.revoke.version().get()
            + self.read.version().get()
    }
}

#[component]
pub fn ConsentPage() -> impl IntoView {
    // Created here, outside `Protected` (see its note).
    let actions = Actions::new();
    let page = Resource::new(move || actions.version(), |_| load_access());
    view! {
        <Title text="Access"/>
        <Protected render=move |_viewer: Viewer| view! {
            <AccountNav/>
            <section class="card access-page">
                <h1>"Access"</h1>
                <p class="muted">
                    "Who may sign in on your behalf, and when. You are told each time someone does."
                </p>
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match page.await {
                            Ok(page) => view! { <AccessSections page actions/> }.into_any(),
                            Err(error) => {
                                // On behalf, the server refuses the page (a protected action).
                                #[cfg(feature = "ssr")]
                                crate::server::set_status(error.status_code());
                                view! { <ErrorPanel error/> }.into_any()
                            }
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}

#[component]
fn AccessSections(page: AccessOverview, actions: Actions) -> impl IntoView {
    let AccessOverview {
        role_grants,
        consent_required,
        requests,
        grants,
        notices,
        grantees,
    } = page;
    view! {
        <SettingForm role_grants consent_required action=actions.setting/>
        <Requests requests action=actions.answer/>
        <Grants grants action=actions.revoke/>
        <GrantForm grantees action=actions.grant/>
        <Notices notices action=actions.read/>
    }
}

/// Beside the setting when the server asks on everyone's behalf.
const CONSENT_REQUIRED: &str = "This server asks you first for everyone.";

/// One radio of the setting, with its label and what it means.
#[component]
fn SettingChoice(value: RoleGrants, checked: bool, label: &'static str, help: &'static str) -> impl IntoView {
    let id = format!("role-grants-{}", value.as_str());
    view! {
        <div class="choice">
            <input type="radio" id=id.clone() name="role_grants" value=value.as_str() checked=checked/>
            <label for=id>{label}</label>
            <p class="muted">{help}</p>
        </div>
    }
}

/// The member's setting; shown disabled (with the reason) when the server asks first
/// for everyone, which no setting loosens.
#[component]
fn SettingForm(
    role_grants: RoleGrants,
    consent_required: bool,
    action: ServerAction<SetRoleGrants>,
) -> impl IntoView {
    let in_force = role_grants.in_force(consent_required);
    let saved = move || matches!(action.value().get(), Some(Ok(_))).then_some("Saved.");
    view! {
        <section aria-labelledby="access-setting">
            <h2 id="access-setting" class="section-title">"Support staff"</h2>
            {action_error(action.value())}
            <ActionForm action attr:class="form narrow-form">
                <fieldset
                    class="mode-choice"
                    disabled=consent_required
                    aria-describedby=consent_required.then_some("consent-required")
                >
                    <legend>"When support staff need to sign in on your behalf"</legend>
                    <SettingChoice
                        value=RoleGrants::Allowed
                        checked=in_force == RoleGrants::Allowed
                        label="Let support staff in by their role"
                        help="Staff above you may sign in on your behalf when they need to."
                    />
                    <SettingChoice
                        value=RoleGrants::Ask
                        checked=in_force == RoleGrants::Ask
                        label="Ask me first"
                        help="Nobody signs in on your behalf unless you approve a request or grant access below."
                    />
                </fieldset>
                {consent_required.then(|| view! { <p id="consent-required" class="locked-reason">{CONSENT_REQUIRED}</p> })}
                <div>
                    <button
                        type="submit"
                        class="button primary"
                        disabled=move || consent_required || action.pending().get()
                    >
                        "Save"
                    </button>
                </div>
                <p role="status" class="muted">{saved}</p>
            </ActionForm>
        </section>
    }
}

fn status_label(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Pending => "Waiting for your answer",
        RequestStatus::Approved => "Approved",
        RequestStatus::Denied => "Denied",
        RequestStatus::Expired => "Expired",
    }
}

/// The headings of the requests.
const REQUEST_COLUMNS: &[Column] = &[
    Column::Text("Who"),
    Column::Text("Reason"),
    Column::Text("Access"),
    Column::Text("Asked"),
    Column::Text("Status"),
    Column::Actions,
];

/// The requests for access: the pending ones with **Approve** and **Deny**, then the
/// latest answered ones with their answer.
#[component]
fn Requests(requests: Vec<RequestView>, action: ServerAction<AnswerRequest>) -> impl IntoView {
    let list = if requests.is_empty() {
        view! { <p class="muted">"Nobody has asked for access."</p> }.into_any()
    } else {
        view! {
            <DataTable label="Requests" columns=REQUEST_COLUMNS>
                {requests.into_iter().map(|request| request_row(request, action)).collect_view()}
            </DataTable>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="access-requests">
            <h2 id="access-requests" class="section-title">"Requests"</h2>
            {action_error(action.value())}
            {list}
        </section>
    }
}

fn request_row(request: RequestView, action: ServerAction<AnswerRequest>) -> impl IntoView {
    let pending = request.status == RequestStatus::Pending;
    let id = request.id;
    view! {
        <tr>
            <td>
                {request.requester_name}
                <span class="muted">{format!(" ({})", role_words(request.requester_role))}</span>
            </td>
            <td class="wrap">{request.reason}</td>
            <td>{format!("{}, {}", mode_label(request.mode), request.duration.label())}</td>
            <td>{request.created}</td>
            <td>{status_label(request.status)}</td>
            <td>
                {pending.then(|| view! {
                    // The submitter's `approve` is posted with the form.
                    <ActionForm action attr:class="inline-form answer-form">
                        <input type="hidden" name="id" value=id/>
                        <button
                            type="submit"
                            name="approve"
                            value="true"
                            class="button primary"
                            disabled=move || action.pending().get()
                        >
                            "Approve"
                        </button>
                        <button
                            type="submit"
                            name="approve"
                            value="false"
                            class="button danger"
                            disabled=move || action.pending().get()
                        >
                            "Deny"
                        </button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}

/// The headings of the grants.
const GRANT_COLUMNS: &[Column] = &[
    Column::Text("Who"),
    Column::Text("Mode"),
    Column::Text("Expires"),
    Column::Actions,
];

/// The member's live grants, each with **Revoke**.
#[component]
fn Grants(grants: Vec<GrantView>, action: ServerAction<RevokeGrant>) -> impl IntoView {
    let list = if grants.is_empty() {
        view! { <p class="muted">"You have not granted access to anyone."</p> }.into_any()
    } else {
        view! {
            <DataTable label="Grants" columns=GRANT_COLUMNS>
                {grants
                    .into_iter()
                    .map(|grant| {
                        let id = grant.id;
                        view! {
                            <tr>
                                <td>{grant.grantee_name}</td>
                                <td>{mode_label(grant.mode)}</td>
                                <td>{grant.expires}</td>
                                <td>
                                    <ActionForm action attr:class="inline-form">
                                        <input type="hidden" name="id" value=id/>
                                        <button
                                            type="submit"
                                            class="button danger"
                                            disabled=move || action.pending().get()
                                        >
                                            "Revoke"
                                        </button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </DataTable>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="access-grants">
            <h2 id="access-grants" class="section-title">"Grants"</h2>
            {action_error(action.value())}
            {list}
        </section>
    }
}

/// **Grant access**: to one person or any support engineer, to view or act, for a while.
#[component]
fn GrantForm(grantees: Vec<GranteeOption>, action: ServerAction<CreateGrant>) -> impl IntoView {
    view! {
        <section aria-labelledby="access-grant">
            <h2 id="access-grant" class="section-title">"Grant access"</h2>
            <p class="muted">
                "Let someone in without asking, for a while. Their role must still allow it."
            </p>
            {action_error(action.value())}
            <ActionForm action attr:class="form order-form grant-form">
                <div class="field">
                    <label for="grant-grantee">"Grantee"</label>
                    <select id="grant-grantee" name="grantee">
                        <option value="any">"Any support engineer"</option>
                        {grantees
                            .into_iter()
                            .map(|g| view! {
                                <option value=g.id>{format!("{} ({})", g.display_name, g.role.label())}</option>
                            })
                            .collect_view()}
                    </select>
                </div>
                <ModeSelect id="grant-mode"/>
                <DurationSelect id="grant-duration"/>
                <div>
                    <button type="submit" class="button primary" disabled=move || action.pending().get()>
                        "Grant access"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}

/// "Sid Support signed in on your behalf — reason: ticket 4711, at 10:42".
fn notice_text(notice: &NoticeView) -> String {
    let (who, what) = (&notice.actor_name, notice.kind.sentence());
    if notice.reason.is_empty() {
        format!("{who} {what}, at {}", notice.at_text)
    } else {
        format!("{who} {what} — reason: {}, at {}", notice.reason, notice.at_text)
    }
}

/// What the member was told, the unread ones with **Mark read**.
#[component]
fn Notices(notices: Vec<NoticeView>, action: ServerAction<MarkNoticeRead>) -> impl IntoView {
    let list = if notices.is_empty() {
        view! { <p class="muted">"No notices."</p> }.into_any()
    } else {
        view! {
            <ul class="notices">
                {notices
                    .into_iter()
                    .map(|notice| {
                        let text = notice_text(&notice);
                        let id = notice.id;
                        view! {
                            <li class=if notice.read { "read" } else { "unread" }>
                                <span>{text}</span>
                                {(!notice.read).then(|| view! {
                                    <ActionForm action attr:class="inline-form">
                                        <input type="hidden" name="id" value=id/>
                                        <button
                                            type="submit"
                                            class="button small"
                                            disabled=move || action.pending().get()
                                        >
                                            "Mark read"
                                        </button>
                                    </ActionForm>
                                })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="access-notices">
            <h2 id="access-notices" class="section-title">"Notices"</h2>
            {action_error(action.value())}
            {list}
        </section>
    }
}
