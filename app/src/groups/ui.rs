//! /admin/groups (every group, and creating one) and /admin/groups/{id} (a group's
//! members, renaming, deleting, adding and removing members), with the User
//! information blade over it at /admin/groups/{id}/members/{member}.

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use leptos_router::{
    components::Outlet,
    hooks::{use_location, use_navigate, use_params_map, use_query_map},
};

use crate::{
    context::Viewer,
    error::AppError,
    groups::{
        get_group, list_groups, AddGroupMember, CreateGroup, DeleteGroup, GroupList, GroupPage,
        RemoveGroupMember, RenameGroup, MAX_GROUP_NAME_CHARS,
    },
    members::{
        blade::{BladeData, MemberBlade},
        MemberSummary,
    },
    ui::{
        field_error, open_blade_on_row_click, thousands, BoundField, Column, DataTable, ErrorPanel, Field,
        Gate, Gated, ListRefresh,
    },
};

#[component]
pub fn GroupsPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let groups = Resource::new(move || refresh.get(), |_| list_groups());
    view! {
        <Title text="Groups"/>
        <Gated gate=Gate::Admin render=move |_viewer: Viewer| view! { <GroupsList groups refresh/> }/>
    }
}

/// The headings of the list of groups.
const GROUP_COLUMNS: &[Column] = &[Column::Text("Name"), Column::Numeric("Members")];

/// The headings of a group's members; the last, of Remove buttons, for editors only.
const MEMBER_COLUMNS: &[Column] = &[
    Column::Text("ID"),
    Column::Text("Name"),
    Column::Text("Email"),
    Column::Text("Role"),
    Column::Actions,
];

#[component]
fn GroupsList(groups: Resource<Result<GroupList, AppError>>, refresh: RwSignal<u32>) -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Groups"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading groups…"</p> }>
                {move || Suspend::new(async move {
                    match groups.await {
                        Ok(list) => {
                            let can_edit = list.can_edit;
                            let empty = list.groups.is_empty();
                            view! {
                                {can_edit.then(|| view! { <CreateGroupForm refresh/> })}
                                <DataTable label="Groups" columns=GROUP_COLUMNS>
                                    {list
                                        .groups
                                        .into_iter()
                                        .map(|group| view! {
                                            <tr>
                                                <td><a href=format!("/admin/groups/{}", group.id)>{group.name}</a></td>
                                                <td class="numeric">{thousands(group.member_count)}</td>
                                            </tr>
                                        })
                                        .collect_view()}
                                    {empty.then(|| view! { <tr><td colspan="2" class="empty">"There are no groups yet."</td></tr> })}
                                </DataTable>
                            }
                            .into_any()
                        }
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn CreateGroupForm(refresh: RwSignal<u32>) -> impl IntoView {
    let create = ServerAction::<CreateGroup>::new();
    let name = RwSignal::new(String::new());
    let result = create.value();
    let error = field_error(result, "name");
    let other = field_error(result, "");
    refresh_on_success(succeeded(result), refresh, Some(name));
    let submit = move || {
        create.dispatch(CreateGroup {
            name: name.get_untracked(),
        });
    };
    view! {
        <InlineForm submit>
            <BoundField
                id="new-group-name"
                label="New group name"
                value=name
                maxlength=MAX_GROUP_NAME_CHARS
                error
                form_error=other
            />
            <button type="submit" class="button primary" disabled=move || create.pending().get()>"Create group"</button>
        </InlineForm>
    }
}

/// The frame of the group pages' one-line forms: submitting runs `submit` instead of
/// posting the page.
#[component]
fn InlineForm(#[prop(into)] submit: Callback<()>, children: Children) -> impl IntoView {
    view! {
        <form
            class="inline-form"
            novalidate
            on:submit=move |event: ev::SubmitEvent| {
                event.prevent_default();
                submit.run(());
            }
        >
            {children()}
        </form>
    }
}

/// Whether a form's last change went through.
fn succeeded<T: 'static>(
    result: impl With<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
) -> Signal<bool> {
    Signal::derive(move || result.with(|result| matches!(result, Some(Ok(_)))))
}

/// After a change goes through: empties the field it was typed in (`clear`) and loads
/// the list under the form again.
fn refresh_on_success(done: Signal<bool>, refresh: RwSignal<u32>, clear: Option<RwSignal<String>>) {
    Effect::new(move |_| {
        if done.get() {
            if let Some(field) = clear {
                field.set(String::new());
            }
            refresh.update(|n| *n += 1);
        }
    });
}

/// `/admin/groups/{id}`: the group's members; the blade opens over it.
#[component]
pub fn GroupDetailPage() -> impl IntoView {
    let location = use_location();
    let params = use_params_map();
    let query = use_query_map();
    let refresh = RwSignal::new(0u32);
    provide_context(ListRefresh(refresh));
    let group = Resource::new(
        move || {
            (
                params.read().get("group"),
                query.read().get("page"),
                refresh.get(),
            )
        },
        |(id, page, _)| async move {
            let id = id
                .and_then(|id| id.parse::<i64>().ok())
                .ok_or_else(|| AppError::NotFound("There is no group at this address.".into()))?;
            get_group(id, page.and_then(|p| p.parse().ok())).await
        },
    );
    // Made here, before the gate, like the group (see `BladeData`).
    let blade = BladeData::new(Signal::derive(move || group_blade_id(&location.pathname.get())));
    view! {
        <Title text="Group"/>
        <div class="with-blade">
            <Gated gate=Gate::Admin render=move |_viewer: Viewer| view! {
                <GroupView group refresh/>
                <Show when=move || blade.is_open()>
                    <GroupBladeRoute blade/>
                </Show>
            }/>
            <Outlet/>
        </div>
    }
}

#[component]
fn GroupView(group: Resource<Result<GroupPage, AppError>>, refresh: RwSignal<u32>) -> impl IntoView {
    view! {
        <section class="card">
            <Transition fallback=|| view! { <p class="loading">"Loading the group…"</p> }>
                {move || Suspend::new(async move {
                    match group.await {
                        Ok(page) => view! { <GroupContent page refresh/> }.into_any(),
                        Err(error) => {
                            #[cfg(feature = "ssr")]
                            if matches!(error, AppError::NotFound(_)) {
                                crate::server::set_status(404);
                            }
                            view! { <h1>"Group"</h1><ErrorPanel error/><p><a href="/admin/groups">"All groups"</a></p> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn GroupContent(page: GroupPage, refresh: RwSignal<u32>) -> impl IntoView {
    let gid = page.group.id;
    let can_edit = page.can_edit;
    let count = page.group.member_count;
    let search = use_location().search.get_untracked();
    let keep = match search.trim_start_matches('?') {
        "" => String::new(),
        query => format!("?{query}"),
    };
    let remove = ServerAction::<RemoveGroupMember>::new();
    let remove_result = remove.value();
    let remove_error = field_error(remove_result, "");
    Effect::new(move |_| {
        if let Some(Ok(())) = remove_result.get() {
            refresh.update(|n| *n += 1);
        }
    });
    let rows = page
        .members
        .into_iter()
        .map(|member| {
            let href = format!("/admin/groups/{gid}/members/{}{keep}", member.id);
            view! { <MemberRow member gid href can_edit remove/> }
        })
        .collect_view();
    let pages = page.pages;
    let current = page.page;
    let previous = (current > 1).then(|| format!("/admin/groups/{gid}?page={}", current - 1));
    let next = (current < pages).then(|| format!("/admin/groups/{gid}?page={}", current + 1));
    let summary = match count {
        1 => "1 member".to_string(),
        n => format!("{} members", thousands(n)),
    };
    let name = page.group.name.clone();
    let columns = if can_edit {
        MEMBER_COLUMNS
    } else {
        &MEMBER_COLUMNS[..4]
    };
    view! {
        <Title text=format!("Group {name}")/>
        <p class="breadcrumbs"><a href="/admin/groups">"Groups"</a>" / "</p>
        <h1>{page.group.name.clone()}</h1>
        <p class="results-summary">
            {summary}" · "
            <a href=format!("/admin/members?group={gid}")>"Search and sort them in the members list"</a>
        </p>
        {can_edit.then(|| view! { <GroupTools gid name=page.group.name.clone() refresh/> })}
        <p class="field-error" role="alert">{move || remove_error.get()}</p>
        <DataTable label="Group members" columns=columns>
            {rows}
            {(count == 0).then(|| view! { <tr><td colspan="5" class="empty">"Nobody is in this group yet."</td></tr> })}
        </DataTable>
        <nav class="pagination" aria-label="Pagination">
            {previous.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
            <span>{format!("Page {} of {}", thousands(current), thousands(pages))}</span>
            {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
        </nav>
    }
}

/// A row of group `gid`'s members, opening the blade at `href`; with Remove for
/// editors (`can_edit`).
#[component]
fn MemberRow(
    member: MemberSummary,
    gid: i64,
    href: String,
    can_edit: bool,
    remove: ServerAction<RemoveGroupMember>,
) -> impl IntoView {
    let mid = member.id;
    let name = member.display_name.clone();
    // A click anywhere on the row opens the blade too (not on Remove: it is a button).
    let open = open_blade_on_row_click(href.clone());
    view! {
        <tr class="opens-blade" on:click=open>
            <td class="numeric">{mid}</td>
            <td>
                <a class="member-link" href=href data-member-id=mid>
                    {member.display_name}
                </a>
            </td>
            <td class="email">{member.email}</td>
            <td>{member.role.label()}</td>
            {can_edit.then(|| view! {
                <td>
                    <button
                        type="button"
                        class="button small"
                        aria-label=format!("Remove {name} from the group")
                        on:click=move |_| { remove.dispatch(RemoveGroupMember { group_id: gid, member_id: mid }); }
                    >
                        "Remove"
                    </button>
                </td>
            })}
        </tr>
    }
}

/// Rename, delete, add a member: for editors and super users.
#[component]
fn GroupTools(gid: i64, name: String, refresh: RwSignal<u32>) -> impl IntoView {
    view! {
        <div class="group-tools">
            <RenameForm gid name=name.clone() refresh/>
            <AddMemberForm gid refresh/>
            <DangerZone gid name/>
        </div>
    }
}

#[component]
fn RenameForm(gid: i64, name: String, refresh: RwSignal<u32>) -> impl IntoView {
    let rename = ServerAction::<RenameGroup>::new();
    let new_name = RwSignal::new(name);
    let result = rename.value();
    let error = field_error(result, "name");
    let other = field_error(result, "");
    refresh_on_success(succeeded(result), refresh, None);
    let submit = move || {
        rename.dispatch(RenameGroup {
            id: gid,
            name: new_name.get_untracked(),
        });
    };
    view! {
        <InlineForm submit>
            <BoundField
                id="group-name"
                label="Group name"
                value=new_name
                maxlength=MAX_GROUP_NAME_CHARS
                error
                form_error=other
            />
            <button type="submit" class="button">"Rename"</button>
        </InlineForm>
    }
}

#[component]
fn AddMemberForm(gid: i64, refresh: RwSignal<u32>) -> impl IntoView {
    let add = ServerAction::<AddGroupMember>::new();
    let member_id = RwSignal::new(String::new());
    let result = add.value();
    let error = field_error(result, "member_id");
    let other = field_error(result, "");
    let local_error = RwSignal::new(None::<String>);
    let message = Signal::derive(move || local_error.get().or_else(|| error.get()).or_else(|| other.get()));
    refresh_on_success(succeeded(result), refresh, Some(member_id));
    let submit = move || {
        let typed = member_id.get_untracked();
        match typed.trim().trim_start_matches('#').parse::<i64>() {
            Ok(id) if id > 0 => {
                local_error.set(None);
                add.dispatch(AddGroupMember {
                    group_id: gid,
                    member_id: id,
                });
            }
            _ => local_error.set(Some("Enter a member ID (a whole number).".into())),
        }
    };
    view! {
        <InlineForm submit>
            <Field id="add-member-id" label="Member ID" error=message>
                <input
                    id="add-member-id"
                    type="text"
                    inputmode="numeric"
                    prop:value=move || member_id.get()
                    on:input=move |ev| member_id.set(event_target_value(&ev))
                    aria-describedby="add-member-id-error"
                />
            </Field>
            <button type="submit" class="button">"Add member"</button>
        </InlineForm>
    }
}

/// Delete the group, after a confirmation; then back to the list of groups.
#[component]
fn DangerZone(gid: i64, name: String) -> impl IntoView {
    let delete = ServerAction::<DeleteGroup>::new();
    let result = delete.value();
    let error = field_error(result, "");
    let confirming = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = result.get() {
            navigate("/admin/groups", Default::default());
        }
    });
    view! {
        <div class="danger-zone">
            <Show
                when=move || confirming.get()
                fallback=move || view! {
                    <button type="button" class="button danger" on:click=move |_| confirming.set(true)>"Delete group"</button>
                }
            >
                <p>{format!("Delete {name}? Its members stay; they leave the group.")}</p>
                <button type="button" class="button danger" on:click=move |_| { delete.dispatch(DeleteGroup { id: gid }); }>
                    "Yes, delete the group"
                </button>
                <button type="button" class="button" on:click=move |_| confirming.set(false)>"Keep it"</button>
            </Show>
            <p class="field-error" role="alert">{move || error.get()}</p>
        </div>
    }
}

/// `/admin/groups/{group}/members/{id}`: the same blade, over the group.
/// The member ID of `/admin/groups/{group}/members/{id}`.
fn group_blade_id(path: &str) -> Option<i64> {
    let rest = path.strip_prefix("/admin/groups/")?;
    let (_, member) = rest.split_once("/members/")?;
    member.trim_end_matches('/').parse().ok()
}

#[component]
pub fn GroupBladeRoute(blade: BladeData) -> impl IntoView {
    let params = use_params_map();
    let location = use_location();
    let close_href = Signal::derive(move || {
        let group = params.read().get("group").unwrap_or_default();
        match location.search.get() {
            search if search.trim_start_matches('?').is_empty() => format!("/admin/groups/{group}"),
            search => format!("/admin/groups/{group}?{}", search.trim_start_matches('?')),
        }
    });
    view! {
        <Title text="User information"/>
        <MemberBlade data=blade close_href/>
    }
}
