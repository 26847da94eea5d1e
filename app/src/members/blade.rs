//! The User information blade (Virto Commerce style): a side panel over a list, with
//! its own address, showing one member and the toolbar of what can be done to them;
//! and the member editor inside it.

use leptos::{ev, html, prelude::*, wasm_bindgen::JsCast};
use leptos_router::{hooks::use_navigate, NavigateOptions};

use crate::{
    consent::RequestAccess,
    error::AppError,
    grant::RoleGrants,
    members::{
        get_member, group_choices, lookup_members, parse_id_list, GroupRef, MemberDetail, MemberForm,
        UpdateMember,
    },
    mode::Mode,
    one_click::ui::OneClickPanel,
    oversight::ui::MemberSessionsPanel,
    role::Role,
    ui::{BoundField, ErrorPanel, Field, ListOrEmpty, ListRefresh},
};

/// The blade's toolbar button: opens the on-behalf window in a new window. A form
/// rather than a script, so it works before the page has hydrated too.
#[component]
pub fn LoginOnBehalfButton(member_id: i64) -> impl IntoView {
    view! {
        <form class="inline-form" method="get" action=format!("/on-behalf/{member_id}") target="_blank">
            <button type="submit" class="button primary">"Login on behalf"</button>
        </form>
    }
}

/// Focuses the list's link to member `id` (where the blade was opened from), or the
/// page's main region when that row is not on screen.
fn focus_opener(id: Option<i64>) {
    let selector = match id {
        Some(id) => format!("[data-member-id=\"{id}\"]"),
        None => "#main".to_string(),
    };
    let target = document()
        .query_selector(&selector)
        .ok()
        .flatten()
        .or_else(|| document().query_selector("#main").ok().flatten());
    if let Some(element) = target.and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok()) {
        let _ = element.focus();
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}

/// The blade's data: member `id`'s detail, loaded again after a save (`reload`).
///
/// The list's page makes it before its gate, as every page makes its resources: the
/// blade is drawn inside the gate's suspense, and a resource made there would be made
/// (and numbered) on the server only once the viewer had resolved, but in the browser
/// at once, so the page failed to hydrate whenever the server's viewer came late.
#[derive(Clone, Copy)]
pub struct BladeData {
    pub id: Signal<Option<i64>>,
    detail: Resource<Result<MemberDetail, AppError>>,
    reload: RwSignal<u32>,
}

impl BladeData {
    pub fn new(id: Signal<Option<i64>>) -> Self {
        let reload = RwSignal::new(0u32);
        let detail = Resource::new(
            move || (id.get(), reload.get()),
            |(id, _)| async move {
                match id {
                    Some(id) => get_member(id).await,
                    None => Err(AppError::NotFound("There is no member at this address.".into())),
                }
            },
        );
        Self { id, detail, reload }
    }

    /// Whether the address names a member, so the blade is open.
    pub fn is_open(&self) -> bool {
        self.id.get().is_some()
    }
}

/// The blade for the member `data` loads. `close_href` is the list it sits over.
#[component]
pub fn MemberBlade(data: BladeData, #[prop(into)] close_href: Signal<String>) -> impl IntoView {
    let BladeData { id, detail, reload } = data;
    let editing = RwSignal::new(false);
    let heading = NodeRef::<html::H2>::new();
    let navigate = use_navigate();
    let close = Callback::new(move |_: ()| {
        let opener = id.get_untracked();
        navigate(
            &close_href.get_untracked(),
            NavigateOptions {
                scroll: false,
                ..Default::default()
            },
        );
        request_animation_frame(move || focus_opener(opener));
    });
    // Escape closes the blade wherever focus is (unless a field is being edited).
    Effect::new(move |_| {
        let handle = window_event_listener(ev::keydown, move |event| {
            if event.key() == "Escape" && !event.default_prevented() {
                if editing.get_untracked() {
                    editing.set(false);
                } else {
                    close.run(());
                }
            }
        });
        on_cleanup(move || handle.remove());
    });
    // Focus moves into the blade when it opens and whenever it shows another member.
    Effect::new(move |_| {
        id.track();
        if let Some(heading) = heading.get() {
            let _ = heading.focus();
        }
    });
    // A new member, a new blade: leave edit mode.
    Effect::new(move |_| {
        id.track();
        editing.set(false);
    });
    let refresh = use_context::<ListRefresh>();
    let saved = Callback::new(move |_: ()| {
        editing.set(false);
        reload.update(|n| *n += 1);
        if let Some(ListRefresh(list)) = refresh {
            list.update(|n| *n += 1);
        }
        request_animation_frame(move || {
            if let Some(heading) = heading.get_untracked() {
                let _ = heading.focus();
            }
        });
    });

    view! {
        <section class="blade" role="dialog" aria-labelledby="blade-title">
            <div class="blade-head">
                <h2 id="blade-title" tabindex="-1" node_ref=heading>"User information"</h2>
                <button type="button" class="icon-button" aria-label="Close" title="Close (Esc)" on:click=move |_| close.run(())>
                    "×"
                </button>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(detail) => view! { <BladeBody detail editing saved/> }.into_any(),
                        Err(error) => {
                            #[cfg(feature = "ssr")]
                            if matches!(error, AppError::NotFound(_)) {
                                crate::server::set_status(404);
                            }
                            view! { <div class="blade-body"><ErrorPanel error/></div> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn BladeBody(detail: MemberDetail, editing: RwSignal<bool>, saved: Callback<()>) -> impl IntoView {
    let member = detail.member.clone();
    let can_edit = detail.can_edit;
    let can_log_in_on_behalf = detail.can_log_in_on_behalf;
    let can_create_link = detail.can_create_link;
    let can_see_sessions = detail.can_see_sessions;
    let can_request = detail.consent.can_request;
    let links_open = RwSignal::new(false);
    let sessions_open = RwSignal::new(false);
    let request_open = RwSignal::new(false);
    // The viewer's request waits for the member's answer (sent before, or just now).
    let request_sent = RwSignal::new(detail.consent.pending_request);
    let link_name = member.display_name.clone();
    let shown = detail.clone();
    let member_id = member.id;
    view! {
        <div class="blade-body">
            <p class="blade-subject">
                <span class="blade-name">{member.display_name.clone()}</span>
                <span class="muted">{format!(" · #{}", member.id)}</span>
            </p>
            <div class="blade-toolbar" role="toolbar" aria-label="Member actions">
                {can_log_in_on_behalf
                    .then(|| view! { <LoginOnBehalfButton member_id/> })}
                {can_edit.then(|| view! { <PanelToggle label="Edit" open=editing/> })}
                {can_create_link.then(|| view! { <PanelToggle label="One-click link" open=links_open/> })}
                {can_see_sessions.then(|| view! { <PanelToggle label="Sessions" open=sessions_open/> })}
                {move || (can_request && !request_sent.get())
                    .then(|| view! { <PanelToggle label="Request access" open=request_open/> })}
                {(!can_edit && !can_log_in_on_behalf && !can_create_link && !can_see_sessions && !can_request)
                    .then(|| view! { <span class="muted">"You may view this member but not change them."</span> })}
            </div>
            {move || request_sent.get().then(|| view! {
                <p class="notice notice-info" role="status">"Request sent — waiting for the member's answer."</p>
            })}
            <Show when=move || request_open.get() && !request_sent.get() && !editing.get()>
                <RequestAccessForm member_id sent=request_sent/>
            </Show>
            <Show when=move || links_open.get() && !editing.get()>
                <OneClickPanel member_id name=link_name.clone()/>
            </Show>
            <Show when=move || sessions_open.get() && !editing.get()>
                <MemberSessionsPanel member_id/>
            </Show>
            <Show
                when=move || editing.get()
                fallback=move || view! { <MemberFacts detail=shown.clone()/> }
            >
                <MemberEditor detail=detail.clone() editing saved/>
            </Show>
        </div>
    }
}

/// A toolbar button that opens and closes one of the blade's panels.
#[component]
fn PanelToggle(label: &'static str, open: RwSignal<bool>) -> impl IntoView {
    view! {
        <button
            type="button"
            class="button"
            aria-pressed=move || open.get().to_string()
            on:click=move |_| open.update(|open| *open = !*open)
        >
            {label}
        </button>
    }
}

/// The `items` as an inline list, or `none` (muted) when there are none.
fn inline_list(items: Vec<AnyView>, none: &'static str) -> AnyView {
    if items.is_empty() {
        view! { <span class="muted">{none}</span> }.into_any()
    } else {
        view! { <ul class="inline-list">{items}</ul> }.into_any()
    }
}

#[component]
fn MemberFacts(detail: MemberDetail) -> impl IntoView {
    let member = detail.member;
    let groups = member
        .groups
        .into_iter()
        .map(|group| {
            view! { <li><a href=format!("/admin/groups/{}", group.id)>{group.name}</a></li> }.into_any()
        })
        .collect();
    let proxies = detail
        .proxy_login_permission
        .into_iter()
        .map(|who| view! { <li>{format!("#{} {}", who.id, who.display_name)}</li> }.into_any())
        .collect();
    let consent_setting = match detail.consent.role_grants {
        RoleGrants::Ask => "Asks first",
        RoleGrants::Allowed => "Lets role grants in",
    };
    let grants = detail
        .consent
        .grants
        .into_iter()
        .map(|grant| {
            let text = format!(
                "{} · {} · until {}",
                grant.grantee_name,
                blade_mode(grant.mode),
                grant.expires
            );
            view! { <li>{text}</li> }.into_any()
        })
        .collect();
    view! {
        <dl class="facts">
            <dt>"ID"</dt>
            <dd>{member.id}</dd>
            <dt>"Name"</dt>
            <dd>{member.display_name}</dd>
            <dt>"Email"</dt>
            <dd class="email">{member.email}</dd>
            <dt>"Role"</dt>
            <dd>{member.role.label()}</dd>
            <dt>"Admin access"</dt>
            <dd>{yes_no(member.admin_access)}</dd>
            <dt>"Authorized to log in"</dt>
            <dd>{yes_no(member.login_enabled)}</dd>
            <dt>"Member since"</dt>
            <dd>{detail.member_since}</dd>
            <dt>"Last sign-in"</dt>
            <dd>{member.last_sign_in.unwrap_or_else(|| "Never".into())}</dd>
            <dt>"Groups"</dt>
            <dd>{inline_list(groups, "None")}</dd>
            <dt>"Proxy login permission"</dt>
            <dd>{inline_list(proxies, "Nobody (only the role rule applies)")}</dd>
            <dt>"On their behalf"</dt>
            <dd>{consent_setting}</dd>
            <dt>"Access granted"</dt>
            <dd>{inline_list(grants, "None")}</dd>
        </dl>
    }
}

/// **Request access**: asks the member, who asks first, to let the viewer in. On
/// success the blade says the request waits (`sent`).
#[component]
fn RequestAccessForm(member_id: i64, sent: RwSignal<bool>) -> impl IntoView {
    let action = ServerAction::<RequestAccess>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            sent.set(true);
        }
    });
    view! {
        <section class="request-access" aria-labelledby="request-access-title">
            <h3 id="request-access-title">"Request access"</h3>
            <p class="muted">"This member asks first: they answer your request."</p>
            {move || action.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            <ActionForm action attr:class="form request-access-form">
                <input type="hidden" name="member_id" value=member_id/>
                <div class="field">
                    <label for="request-reason">"Reason"</label>
                    <textarea id="request-reason" name="reason" rows="2" maxlength="500" required></textarea>
                </div>
                <div class="field">
                    <label for="request-mode">"Mode"</label>
                    <select id="request-mode" name="mode">
                        <option value="view">"View only"</option>
                        <option value="act">"Act"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="request-duration">"Duration"</label>
                    <select id="request-duration" name="duration">
                        <option value="1h">"1 hour"</option>
                        <option value="1d">"1 day"</option>
                        <option value="1w">"1 week"</option>
                    </select>
                </div>
                <div>
                    <button type="submit" class="button primary" disabled=move || action.pending().get()>
                        "Send request"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}

/// A grant's mode as the blade shows it (the blade's own words: the Access page's
/// helpers stay in that page's chunk).
fn blade_mode(mode: Mode) -> &'static str {
    match mode {
        Mode::View => "View only",
        Mode::Act => "Act",
    }
}

fn ids_text(ids: impl Iterator<Item = i64>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
}

/// The member editor. Every field's error appears next to it; nothing is saved
/// unless everything is valid.
#[component]
fn MemberEditor(detail: MemberDetail, editing: RwSignal<bool>, saved: Callback<()>) -> impl IntoView {
    let id = detail.member.id;
    let name = RwSignal::new(detail.member.display_name.clone());
    let email = RwSignal::new(detail.member.email.clone());
    let role = RwSignal::new(detail.member.role.as_str().to_string());
    let admin = RwSignal::new(detail.member.admin_access);
    let login = RwSignal::new(detail.member.login_enabled);
    let groups = RwSignal::new(detail.member.groups.iter().map(|g| g.id).collect::<Vec<i64>>());
    let proxies = RwSignal::new(ids_text(detail.proxy_login_permission.iter().map(|m| m.id)));
    let save = ServerAction::<UpdateMember>::new();
    let result = save.value();
    let field_error = move |field: &'static str| crate::ui::field_error(result, field);
    let general_error = field_error("");
    Effect::new(move |_| {
        if let Some(Ok(_)) = result.get() {
            saved.run(());
        }
    });
    let on_submit = move |event: ev::SubmitEvent| {
        event.prevent_default();
        save.dispatch(UpdateMember {
            id,
            edit: MemberForm {
                display_name: name.get_untracked(),
                email: email.get_untracked(),
                role: role.get_untracked(),
                admin_access: admin.get_untracked(),
                login_enabled: login.get_untracked(),
                groups: ids_text(groups.get_untracked().into_iter()),
                proxy_login_permission: proxies.get_untracked(),
            },
        });
    };
    view! {
        <form class="editor" on:submit=on_submit novalidate>
            <p class="notice notice-error" role="alert" hidden=move || general_error.get().is_none()>
                {general_error}
            </p>
            <BoundField id="edit-name" label="Display name" value=name maxlength=100 error=field_error("display_name")/>
            <BoundField id="edit-email" label="Email" kind="email" value=email maxlength=254 error=field_error("email")/>
            <RoleSelect roles=detail.assignable_roles current=detail.member.role role error=field_error("role")/>
            <CheckboxField id="edit-admin" label="Admin access" checked=admin/>
            <CheckboxField id="edit-login" label="Authorized to log in" checked=login/>
            <GroupChoices groups error=field_error("groups")/>
            <ProxiesField proxies error=field_error("proxy_login_permission")/>
            <div class="form-actions">
                <button type="submit" class="button primary" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Saving…" } else { "Save" }}
                </button>
                <button type="button" class="button" on:click=move |_| editing.set(false)>"Cancel"</button>
            </div>
        </form>
    }
}

/// The editor's role: one of the `roles` the viewer may give, `current` chosen first.
#[component]
fn RoleSelect(
    roles: Vec<Role>,
    current: Role,
    role: RwSignal<String>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <Field id="edit-role" label="Role" error>
            <select
                id="edit-role"
                on:change=move |ev| role.set(event_target_value(&ev))
                aria-describedby="edit-role-error"
            >
                {roles
                    .into_iter()
                    .map(|r| view! { <option value=r.as_str() selected=r == current>{r.label()}</option> })
                    .collect_view()}
            </select>
        </Field>
    }
}

/// A checkbox with its label after it, bound to `checked`.
#[component]
fn CheckboxField(id: &'static str, label: &'static str, checked: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="field checkbox-field">
            <input
                id=id
                type="checkbox"
                prop:checked=move || checked.get()
                on:change=move |ev| checked.set(event_target_checked(&ev))
            />
            <label for=id>{label}</label>
        </div>
    }
}

/// The editor's groups: a checkbox for every group, ticked for those in `groups`.
#[component]
fn GroupChoices(groups: RwSignal<Vec<i64>>, error: Signal<Option<String>>) -> impl IntoView {
    let all_groups = Resource::new(|| (), |_| group_choices());
    let checkbox = move |group: GroupRef| {
        let gid = group.id;
        let input_id = format!("edit-group-{gid}");
        view! {
            <label class="checkbox-option">
                <input
                    id=input_id
                    type="checkbox"
                    prop:checked=move || groups.read().contains(&gid)
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        groups.update(|g| {
                            g.retain(|x| *x != gid);
                            if on {
                                g.push(gid);
                            }
                        });
                    }
                />
                {group.name}
            </label>
        }
    };
    view! {
        <fieldset class="field" aria-describedby="edit-groups-error">
            <legend>"Groups"</legend>
            <ListOrEmpty
                resource=all_groups
                is_empty=Vec::is_empty
                loading="Loading groups…"
                empty=|| view! { <p class="muted">"There are no groups yet."</p> }
                render={move |list: Vec<GroupRef>| {
                    view! { <div class="checkbox-grid">{list.into_iter().map(checkbox).collect_view()}</div> }.into_any()
                }}
            />
            <p id="edit-groups-error" class="field-error">{move || error.get()}</p>
        </fieldset>
    }
}

/// The editor's proxy login permission: member IDs as typed, with the names behind
/// them shown back as they are typed.
#[component]
fn ProxiesField(proxies: RwSignal<String>, error: Signal<Option<String>>) -> impl IntoView {
    let names = Resource::new(
        move || proxies.get(),
        |text| async move {
            match parse_id_list(&text) {
                Err(message) => Err(AppError::validation("proxy_login_permission", message)),
                Ok(ids) if ids.is_empty() => Ok(Vec::new()),
                Ok(_) => lookup_members(text).await,
            }
        },
    );
    view! {
        <Field id="edit-proxies" label="Proxy login permission" error>
            <input
                id="edit-proxies"
                type="text"
                inputmode="numeric"
                placeholder="Member IDs, e.g. 12, 40"
                prop:value=move || proxies.get()
                on:input=move |ev| proxies.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby="edit-proxies-help edit-proxies-error"
            />
            <p id="edit-proxies-help" class="help">
                "The IDs of the members who may log in on this member's behalf."
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match names.await {
                        Ok(found) => view! {
                            <ul class="id-names" aria-label="Members with proxy login permission">
                                {found
                                    .into_iter()
                                    .map(|entry| match entry.display_name {
                                        Some(name) => view! { <li>{format!("#{} {name}", entry.id)}</li> }.into_any(),
                                        None => view! { <li class="unknown">{format!("#{} — no such member", entry.id)}</li> }.into_any(),
                                    })
                                    .collect_view()}
                            </ul>
                        }
                        .into_any(),
                        Err(error) => view! { <p class="help unknown">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </Field>
    }
}
