//! The members list at /admin/members, with the User information blade over it at
//! /admin/members/{id}.

use std::time::Duration;

use leptos::{ev, html, prelude::*};
use leptos_meta::Title;
use leptos_router::{
    components::Outlet,
    hooks::{use_location, use_navigate, use_query_map},
    location::Location,
    params::ParamsMap,
    NavigateOptions,
};

use crate::{
    context::Viewer,
    members::{
        blade::{BladeData, MemberBlade},
        group_choices, list_members, GroupRef, ListQuery, MemberPage, MemberSummary, Role, SortKey,
        MAX_SEARCH_CHARS,
    },
    ui::{open_blade_on_row_click, thousands, ErrorPanel, Gate, Gated, ListRefresh},
    urls::encode_query_value,
};

/// The list's address for these parameters (defaults left out, so links stay short).
pub fn members_href(
    q: &str,
    role: Option<&str>,
    group: Option<&str>,
    sort: Option<&str>,
    descending: bool,
    page: i64,
    cursor: Option<(&str, i64)>,
) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", encode_query_value(q)));
    }
    if let Some(role) = role.filter(|r| !r.is_empty()) {
        parts.push(format!("role={}", encode_query_value(role)));
    }
    if let Some(group) = group.filter(|g| !g.is_empty()) {
        parts.push(format!("group={}", encode_query_value(group)));
    }
    if let Some(sort) = sort.filter(|s| !s.is_empty() && *s != SortKey::Name.as_str()) {
        parts.push(format!("sort={}", encode_query_value(sort)));
    }
    if descending {
        parts.push("dir=desc".to_string());
    }
    if page > 1 {
        parts.push(format!("page={page}"));
        if let Some((name, id)) = cursor {
            parts.push(format!("{name}={id}"));
        }
    }
    if parts.is_empty() {
        "/admin/members".to_string()
    } else {
        format!("/admin/members?{}", parts.join("&"))
    }
}

fn href_for(
    query: &ListQuery,
    sort: SortKey,
    descending: bool,
    page: i64,
    cursor: Option<(&str, i64)>,
) -> String {
    members_href(
        &query.q,
        query.role.map(Role::as_str),
        query.group.map(|g| g.to_string()).as_deref(),
        Some(sort.as_str()),
        descending,
        page,
        cursor,
    )
}

/// The list's data, keyed on the URL: a newer query always wins, so results never
/// arrive out of order. Created once per page here, outside `Protected`'s
/// suspense, which re-renders its children while resources settle (a resource made
/// inside would be made, and fetched, again each time).
type MembersResource = Resource<Result<MemberPage, crate::error::AppError>>;

type GroupsResource = Resource<Result<Vec<GroupRef>, crate::error::AppError>>;

#[component]
pub fn MembersPage() -> impl IntoView {
    let location = use_location();
    let params = use_query_map();
    let refresh = RwSignal::new(0u32);
    provide_context(ListRefresh(refresh));
    let members: MembersResource = Resource::new(
        move || {
            let p = params.read();
            (
                (p.get("q"), p.get("role"), p.get("group")),
                (p.get("sort"), p.get("dir"), p.get("page")),
                (p.get("after"), p.get("before")),
                refresh.get(),
            )
        },
        |((q, role, group), (sort, dir, page), (after, before), _)| {
            list_members(
                q,
                role,
                group,
                sort,
                dir,
                page.and_then(|p| p.parse().ok()),
                after,
                before,
            )
        },
    );
    let groups: GroupsResource = Resource::new(|| (), |_| group_choices());
    let blade = BladeData::new(Signal::derive(move || {
        blade_in_path(&location.pathname.get(), "/admin/members/")
    }));
    view! {
        <Title text="Members"/>
        <div class="with-blade">
            <Gated gate=Gate::Admin render=move |_viewer: Viewer| view! {
                <MembersList members groups/>
                <Show when=move || blade.is_open()>
                    <MemberBladeRoute blade/>
                </Show>
            }/>
            <Outlet/>
        </div>
    }
}

/// The member ID of a blade's address: what follows `prefix` (`/admin/members/` or
/// `/admin/groups/{group}/members/`), when it is one. The list pages draw their blade
/// themselves (one chunk for both), so it is read from the path, not a child route's
/// params.
pub fn blade_in_path(path: &str, prefix: &str) -> Option<i64> {
    path.strip_prefix(prefix)?.trim_end_matches('/').parse().ok()
}

/// `/admin/members/{id}`: the blade over the list.
#[component]
pub fn MemberBladeRoute(blade: BladeData) -> impl IntoView {
    let location = use_location();
    let close_href = Signal::derive(move || match location.search.get() {
        search if search.trim_start_matches('?').is_empty() => "/admin/members".to_string(),
        search => format!("/admin/members?{}", search.trim_start_matches('?')),
    });
    view! {
        <Title text="User information"/>
        <MemberBlade data=blade close_href/>
    }
}

/// How long search-as-you-type waits after the last keystroke.
const SEARCH_DELAY: Duration = Duration::from_millis(250);

/// The list's search form: its controls, and the navigations they start. What the form
/// asks for is always read from the controls themselves (a person may have typed or
/// chosen before the page hydrated), never from a copy kept on the side.
#[derive(Clone, Copy)]
struct SearchForm {
    input: NodeRef<html::Input>,
    role: NodeRef<html::Select>,
    group: NodeRef<html::Select>,
    params: Memo<ParamsMap>,
    /// Where the app is: the router's address, which changes as a navigation starts
    /// (before the address bar does).
    here: Memo<String>,
    navigate: Callback<String>,
    /// The search waiting for typing to pause, and the address it was scheduled at.
    pending: StoredValue<Option<(TimeoutHandle, String)>>,
}

impl SearchForm {
    fn new() -> Self {
        let Location { pathname, search, .. } = use_location();
        let navigate = use_navigate();
        let navigate = Callback::new(move |url: String| {
            let options = NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            };
            navigate(&url, options);
        });
        SearchForm {
            input: NodeRef::new(),
            role: NodeRef::new(),
            group: NodeRef::new(),
            params: use_query_map(),
            here: Memo::new(move |_| format!("{}?{}", pathname.get(), search.get())),
            navigate,
            pending: StoredValue::new(None),
        }
    }

    /// The list's address for what the form asks for now: page 1, the sort kept.
    fn href(self) -> String {
        let p = self.params.read_untracked();
        // A control not on the page (yet) asks for what the address does.
        let value = |control: Option<String>, key: &str| control.or_else(|| p.get(key)).unwrap_or_default();
        let q = value(self.input.get_untracked().map(|input| input.value()), "q");
        let role = value(self.role.get_untracked().map(|select| select.value()), "role");
        let group = value(self.group.get_untracked().map(|select| select.value()), "group");
        members_href(
            q.trim(),
            Some(&role),
            Some(&group),
            p.get("sort").as_deref(),
            p.get("dir").as_deref() == Some("desc"),
            1,
            None,
        )
    }

    /// Searches now (a pending search is superseded).
    fn go(self) {
        self.cancel();
        self.navigate.run(self.href());
    }

    /// Searches once typing pauses, unless the app has gone somewhere else by then.
    fn schedule(self) {
        self.cancel();
        let at = self.here.get_untracked();
        let handle = set_timeout_with_handle(move || self.fire(), SEARCH_DELAY).ok();
        self.pending.set_value(handle.map(|handle| (handle, at)));
    }

    fn fire(self) {
        let scheduled = self.pending.try_update_value(Option::take).flatten();
        if scheduled.is_some_and(|(_, at)| at == self.here.get_untracked()) {
            self.go();
        }
    }

    fn cancel(self) {
        if let Some(Some((handle, _))) = self.pending.try_update_value(Option::take) {
            handle.clear();
        }
    }

    /// Keeps the form and the address in step: a navigation that starts elsewhere (a
    /// member's name opening the blade, Back, a link) cancels the pending search; what was
    /// typed or chosen before the page hydrated is searched for as soon as it has; Back and
    /// Forward show their search text in the box, unless someone is typing there.
    fn keep_in_step(self) {
        on_cleanup(move || self.cancel());
        Effect::new(move |_| {
            let here = self.here.get();
            let moved = self
                .pending
                .try_with_value(|p| p.as_ref().is_some_and(|(_, at)| *at != here));
            if moved == Some(true) {
                self.cancel();
            }
        });
        Effect::new(move |caught_up: Option<bool>| {
            let q = self.params.read().get("q").unwrap_or_default();
            let Some(input) = self.input.get() else {
                return false;
            };
            if caught_up != Some(true) {
                let typed = input.value() != input.default_value();
                if typed || changed_since_render(self.role) || changed_since_render(self.group) {
                    self.go();
                }
                return true;
            }
            let typing = document().active_element().is_some_and(|active| {
                let active: &leptos::web_sys::Element = &active;
                let input: &leptos::web_sys::Element = &input;
                active == input
            });
            if !typing && input.value() != q {
                input.set_value(&q);
            }
            true
        });
    }
}

/// Whether a person chose another option than the one the page was rendered with (before
/// it hydrated: afterwards each change searches at once).
fn changed_since_render(select: NodeRef<html::Select>) -> bool {
    select.get_untracked().is_some_and(|select| {
        let rendered = select
            .query_selector("option[selected]")
            .ok()
            .flatten()
            .and_then(|option| option.get_attribute("value"))
            .unwrap_or_default();
        select.value() != rendered
    })
}

#[component]
fn MembersList(members: MembersResource, groups: GroupsResource) -> impl IntoView {
    let form = SearchForm::new();
    form.keep_in_step();
    view! {
        <section class="card">
            <h1>"Members"</h1>
            <SearchToolbar form groups/>
            <Transition fallback=|| view! { <p class="loading">"Loading members…"</p> }>
                {move || Suspend::new(async move {
                    match members.await {
                        Ok(page) => view! { <MemberTable page/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The search box and the filters: a plain GET form, so that before the page has
/// hydrated (or without JavaScript) Enter and Search still search; hydrated, the app
/// handles them, and typing searches by itself once it pauses.
#[component]
fn SearchToolbar(form: SearchForm, groups: GroupsResource) -> impl IntoView {
    let on_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        form.go();
    };
    let p = form.params.read_untracked();
    let (initial_q, initial_role) = (p.get("q").unwrap_or_default(), p.get("role").unwrap_or_default());
    let initial_group = p.get("group").unwrap_or_default();
    // The sort goes with the form too when the browser submits it.
    let sort = p.get("sort").filter(|sort| !sort.is_empty());
    let descending = p.get("dir").as_deref() == Some("desc");
    drop(p);
    view! {
        <form class="toolbar" method="get" action="/admin/members" role="search" on:submit=on_submit>
            <input
                node_ref=form.input
                type="search"
                name="q"
                class="search"
                aria-label="Search members"
                placeholder="Search by ID, name or email"
                maxlength=MAX_SEARCH_CHARS
                value=initial_q
                on:input=move |_| form.schedule()
            />
            {sort.map(|sort| view! { <input type="hidden" name="sort" value=sort/> })}
            {descending.then(|| view! { <input type="hidden" name="dir" value="desc"/> })}
            <label class="inline-label" for="role-filter">"Role"</label>
            <select id="role-filter" name="role" node_ref=form.role on:change=move |_| form.go()>
                <option value="" selected=initial_role.is_empty()>"All roles"</option>
                {Role::ALL
                    .into_iter()
                    .map(|role| {
                        let selected = initial_role == role.as_str();
                        view! { <option value=role.as_str() selected=selected>{role.label()}</option> }
                    })
                    .collect_view()}
            </select>
            <Transition fallback=|| ()>
                {
                    let initial_group = initial_group.clone();
                    move || {
                        let initial_group = initial_group.clone();
                        Suspend::new(async move {
                            let list = groups.await.unwrap_or_default();
                            view! { <GroupFilter form list initial_group/> }
                        })
                    }
                }
            </Transition>
            <button type="submit" class="button">"Search"</button>
        </form>
    }
}

#[component]
fn GroupFilter(form: SearchForm, list: Vec<GroupRef>, initial_group: String) -> impl IntoView {
    view! {
        <label class="inline-label" for="group-filter">"Group"</label>
        <select id="group-filter" name="group" node_ref=form.group on:change=move |_| form.go()>
            <option value="" selected=initial_group.is_empty()>"All groups"</option>
            {list
                .into_iter()
                .map(|group| {
                    let value = group.id.to_string();
                    let selected = value == initial_group;
                    view! { <option value=value selected=selected>{group.name}</option> }
                })
                .collect_view()}
        </select>
    }
}

#[component]
fn MemberTable(page: MemberPage) -> impl IntoView {
    let query = page.query.clone();
    let summary = match (&page.hint, page.total, page.more) {
        (Some(hint), _, _) => hint.clone(),
        (None, total, true) => format!("More than {} members match.", thousands(total)),
        (None, 1, false) => "1 member".to_string(),
        (None, total, false) => format!("{} members", thousands(total)),
    };
    let header = |label: &'static str, key: SortKey| {
        let active = query.sort == key;
        let aria_sort = match (active, query.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        let href = href_for(&query, key, active && !query.descending, 1, None);
        let arrow = match (active, query.descending) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        };
        view! {
            <th scope="col" aria-sort=aria_sort>
                <a href=href>{label}{arrow}</a>
            </th>
        }
    };
    let pages = page.pages();
    let current = match pages {
        Some(pages) => query.page.min(pages),
        None => query.page,
    };
    // Going back to page 1 needs no cursor; other pages start from a neighbour's row.
    let previous = match (current, page.previous) {
        (1, _) => None,
        (2, _) => Some(href_for(&query, query.sort, query.descending, 1, None)),
        (n, Some(id)) => Some(href_for(
            &query,
            query.sort,
            query.descending,
            n - 1,
            Some(("before", id)),
        )),
        (_, None) => Some(href_for(&query, query.sort, query.descending, 1, None)),
    };
    let next = page.next.map(|id| {
        href_for(
            &query,
            query.sort,
            query.descending,
            current + 1,
            Some(("after", id)),
        )
    });
    let first = (current > 2).then(|| href_for(&query, query.sort, query.descending, 1, None));
    let position = match pages {
        Some(pages) => format!("Page {} of {}", thousands(current), thousands(pages)),
        None => format!("Page {}", thousands(current)),
    };
    let no_rows = page.members.is_empty();
    let rows = page
        .members
        .into_iter()
        .map(|member| view! { <MemberRow member base="/admin/members"/> })
        .collect_view();
    let empty = no_rows.then(|| {
        view! {
            <tr>
                <td colspan="8" class="empty">"No members match this search."</td>
            </tr>
        }
    });
    view! {
        <p class="results-summary" role="status">{summary}</p>
        <div class="table-wrap">
            <table class="data-table" aria-label="Members">
                <thead>
                    <tr>
                        {header("ID", SortKey::Id)}
                        {header("Name", SortKey::Name)}
                        {header("Email", SortKey::Email)}
                        {header("Role", SortKey::Role)}
                        <th scope="col">"Admin access"</th>
                        <th scope="col">"Authorized to log in"</th>
                        <th scope="col">"Groups"</th>
                        {header("Last sign-in (UTC)", SortKey::LastSignIn)}
                    </tr>
                </thead>
                <tbody>{rows}{empty}</tbody>
            </table>
        </div>
        <nav class="pagination" aria-label="Pagination">
            {first.map(|href| view! { <a href=href>"« First"</a> })}
            {previous.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
            <span>{position}</span>
            {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
        </nav>
    }
}

/// One member as a table row; the name opens the blade at `{base}/{id}` with the
/// list's query kept (so closing it returns to the same page of the same list), and so
/// does a click anywhere else on the row.
#[component]
pub fn MemberRow(member: MemberSummary, #[prop(into)] base: String) -> impl IntoView {
    let yes_no = |value: bool| if value { "Yes" } else { "No" };
    let search = use_location().search.get_untracked();
    let href = match search.trim_start_matches('?') {
        "" => format!("{base}/{}", member.id),
        query => format!("{base}/{}?{query}", member.id),
    };
    let open = open_blade_on_row_click(href.clone());
    let groups = member
        .groups
        .iter()
        .map(|g| g.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <tr class="opens-blade" on:click=open>
            <td class="numeric">{member.id}</td>
            <td>
                <a class="member-link" href=href data-member-id=member.id>{member.display_name}</a>
            </td>
            <td class="email">{member.email}</td>
            <td>{member.role.label()}</td>
            <td>{yes_no(member.admin_access)}</td>
            <td>{yes_no(member.login_enabled)}</td>
            <td class="groups" title=groups.clone()>{groups.clone()}</td>
            <td class="numeric">
                {member
                    .last_sign_in
                    .map(|at| at.trim_end_matches(" UTC").to_string())
                    .unwrap_or_else(|| "Never".to_string())}
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_links_keep_only_what_differs_from_the_defaults() {
        assert_eq!(
            members_href("", None, None, None, false, 1, None),
            "/admin/members"
        );
        assert_eq!(
            members_href("", Some(""), Some(""), Some("name"), false, 1, Some(("after", 9))),
            "/admin/members"
        );
        assert_eq!(
            members_href(
                "ann lee",
                Some("support"),
                Some("4"),
                Some("email"),
                true,
                3,
                Some(("after", 77))
            ),
            "/admin/members?q=ann%20lee&role=support&group=4&sort=email&dir=desc&page=3&after=77"
        );
        assert_eq!(
            members_href("50%_off", None, None, None, false, 1, None),
            "/admin/members?q=50%25_off"
        );
    }
}
