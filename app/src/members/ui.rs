//! The members list at /admin/members.

use std::time::Duration;

use leptos::{html, prelude::*};
use leptos_meta::Title;
use leptos_router::{
    hooks::{use_navigate, use_query_map},
    NavigateOptions,
};

use crate::{
    auth::Viewer,
    members::{
        list_members, ListQuery, MemberPage, MemberSummary, Role, SortKey, MAX_PAGE, MAX_SEARCH_CHARS,
    },
    ui::{encode_query_value, thousands, ErrorPanel, Forbidden, Protected},
};

/// The list's address for these parameters (defaults left out, so links stay short).
pub fn members_href(q: &str, role: Option<&str>, sort: Option<&str>, descending: bool, page: i64) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", encode_query_value(q)));
    }
    if let Some(role) = role.filter(|r| !r.is_empty()) {
        parts.push(format!("role={}", encode_query_value(role)));
    }
    if let Some(sort) = sort.filter(|s| !s.is_empty() && *s != SortKey::Name.as_str()) {
        parts.push(format!("sort={}", encode_query_value(sort)));
    }
    if descending {
        parts.push("dir=desc".to_string());
    }
    if page > 1 {
        parts.push(format!("page={page}"));
    }
    if parts.is_empty() {
        "/admin/members".to_string()
    } else {
        format!("/admin/members?{}", parts.join("&"))
    }
}

fn href_for(query: &ListQuery, sort: SortKey, descending: bool, page: i64) -> String {
    members_href(
        &query.q,
        query.role.map(Role::as_str),
        Some(sort.as_str()),
        descending,
        page,
    )
}

/// The list's data, keyed on the URL: a newer query always wins, so results never
/// arrive out of order. Created once per page here, outside `Protected`'s
/// suspense, which re-renders its children while resources settle (a resource made
/// inside would be made, and fetched, again each time).
type MembersResource = Resource<Result<MemberPage, crate::error::AppError>>;

#[component]
pub fn MembersPage() -> impl IntoView {
    let params = use_query_map();
    let members: MembersResource = Resource::new(
        move || {
            let p = params.read();
            (
                p.get("q"),
                p.get("role"),
                p.get("sort"),
                p.get("dir"),
                p.get("page"),
            )
        },
        |(q, role, sort, dir, page)| list_members(q, role, sort, dir, page.and_then(|p| p.parse().ok())),
    );
    view! {
        <Title text="Members"/>
        <Protected render=move |viewer: Viewer| {
            if viewer.admin_access {
                view! { <MembersList members/> }.into_any()
            } else {
                view! { <Forbidden/> }.into_any()
            }
        }/>
    }
}

#[component]
fn MembersList(members: MembersResource) -> impl IntoView {
    let params = use_query_map();

    let navigate = use_navigate();
    let search_input = NodeRef::<html::Input>::new();
    let pending = StoredValue::new(None::<TimeoutHandle>);
    let go = {
        let navigate = navigate.clone();
        move |q: String, role: Option<String>| {
            let p = params.read_untracked();
            let url = members_href(
                q.trim(),
                role.as_deref(),
                p.get("sort").as_deref(),
                p.get("dir").as_deref() == Some("desc"),
                1,
            );
            navigate(
                &url,
                NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    };
    // Search as you type, 250 ms after the last keystroke.
    let on_input = {
        let go = go.clone();
        move |ev| {
            let value = event_target_value(&ev);
            if let Some(handle) = pending.get_value() {
                handle.clear();
            }
            let go = go.clone();
            let role = params.read_untracked().get("role");
            let handle = set_timeout_with_handle(move || go(value, role), Duration::from_millis(250)).ok();
            pending.set_value(handle);
        }
    };
    let on_role = {
        let go = go.clone();
        move |ev| {
            let q = search_input
                .get_untracked()
                .map(|input| input.value())
                .unwrap_or_default();
            let role = event_target_value(&ev);
            go(q, Some(role));
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(handle) = pending.get_value() {
            handle.clear();
        }
        let q = search_input
            .get_untracked()
            .map(|input| input.value())
            .unwrap_or_default();
        go(q, params.read_untracked().get("role"));
    };
    // Back and forward change the URL: show its search text, unless someone is typing.
    Effect::new(move |_| {
        let q = params.read().get("q").unwrap_or_default();
        if let Some(input) = search_input.get() {
            let typing = document().active_element().is_some_and(|active| {
                let active: &leptos::web_sys::Element = &active;
                let input: &leptos::web_sys::Element = &input;
                active == input
            });
            if !typing && input.value() != q {
                input.set_value(&q);
            }
        }
    });

    let initial_q = params.read_untracked().get("q").unwrap_or_default();
    let initial_role = params.read_untracked().get("role").unwrap_or_default();
    view! {
        <section class="card">
            <h1>"Members"</h1>
            <form class="toolbar" method="get" action="/admin/members" role="search" on:submit=on_submit>
                <input
                    node_ref=search_input
                    type="search"
                    name="q"
                    class="search"
                    aria-label="Search members"
                    placeholder="Search by ID, name or email"
                    maxlength=MAX_SEARCH_CHARS
                    value=initial_q
                    on:input=on_input
                />
                <label class="inline-label" for="role-filter">"Role"</label>
                <select id="role-filter" name="role" on:change=on_role>
                    <option value="" selected=initial_role.is_empty()>"All roles"</option>
                    {Role::ALL
                        .into_iter()
                        .map(|role| {
                            let selected = initial_role == role.as_str();
                            view! { <option value=role.as_str() selected=selected>{role.label()}</option> }
                        })
                        .collect_view()}
                </select>
                <button type="submit" class="button">"Search"</button>
            </form>
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

#[component]
fn MemberTable(page: MemberPage) -> impl IntoView {
    let query = page.query.clone();
    let summary = match (page.total, page.more) {
        (total, true) => format!(
            "{}+ members match. Narrow the search to see them all.",
            thousands(total)
        ),
        (1, false) => "1 member".to_string(),
        (total, false) => format!("{} members", thousands(total)),
    };
    let header = |label: &'static str, key: SortKey| {
        let active = query.sort == key;
        let aria_sort = match (active, query.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        let href = href_for(&query, key, active && !query.descending, 1);
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
    let current = query.page.min(pages);
    let previous = (current > 1).then(|| href_for(&query, query.sort, query.descending, current - 1));
    let next = (current < pages).then(|| href_for(&query, query.sort, query.descending, current + 1));
    let rows = page
        .members
        .into_iter()
        .map(|member| view! { <MemberRow member/> })
        .collect_view();
    let empty = (pages == 1 && page.total == 0).then(|| {
        view! {
            <tr>
                <td colspan="7" class="empty">"No members match this search."</td>
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
                        {header("Last sign-in (UTC)", SortKey::LastSignIn)}
                    </tr>
                </thead>
                <tbody>{rows}{empty}</tbody>
            </table>
        </div>
        <nav class="pagination" aria-label="Pagination">
            {previous.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
            <span>{format!("Page {} of {}", thousands(current), thousands(pages))}</span>
            {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
        </nav>
        {(current == MAX_PAGE).then(|| view! { <p class="muted">"The list stops here: narrow the search to see more."</p> })}
    }
}

#[component]
fn MemberRow(member: MemberSummary) -> impl IntoView {
    let yes_no = |value: bool| if value { "Yes" } else { "No" };
    view! {
        <tr>
            <td class="numeric">{member.id}</td>
            <td>{member.display_name}</td>
            <td class="email">{member.email}</td>
            <td>{member.role.label()}</td>
            <td>{yes_no(member.admin_access)}</td>
            <td>{yes_no(member.login_enabled)}</td>
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
        assert_eq!(members_href("", None, None, false, 1), "/admin/members");
        assert_eq!(
            members_href("", Some(""), Some("name"), false, 1),
            "/admin/members"
        );
        assert_eq!(
            members_href("ann lee", Some("support"), Some("email"), true, 3),
            "/admin/members?q=ann%20lee&role=support&sort=email&dir=desc&page=3"
        );
        assert_eq!(
            members_href("50%_off", None, None, false, 1),
            "/admin/members?q=50%25_off"
        );
    }
}
