//! The page frame above the areas: the header with the account menu, **Login as**
//! and **Sign out**.

use leptos::prelude::*;

use crate::{auth::ui::SignOutButton, on_behalf::ui::LoginAsMenu, policy, ui::ViewerResource};

#[component]
pub fn Header() -> impl IntoView {
    let ViewerResource(viewer) = expect_context();
    view! {
        <header class="site-header">
            <a class="brand" href="/">"Behalf"</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match viewer.await {
                        Ok(Some(viewer)) => view! {
                            <nav class="member-menu" aria-label="Account">
                                <a href="/">"My account"</a>
                                {viewer.admin_access.then(|| view! {
                                    <a href="/admin/members">"Members"</a>
                                    <a href="/admin/groups">"Groups"</a>
                                })}
                                {policy::may_audit(viewer.role, viewer.admin_access)
                                    .is_ok()
                                    .then(|| view! { <a href="/admin/audit">"Audit"</a> })}
                                {policy::may_oversee(viewer.role, viewer.admin_access, viewer.on_behalf.is_some())
                                    .is_ok()
                                    .then(|| view! { <a href="/admin/impersonations">"On behalf now"</a> })}
                                {(viewer.admin_access && viewer.on_behalf.is_none())
                                    .then(|| view! { <LoginAsMenu/> })}
                                <span class="who">
                                    <span class="who-name">{viewer.display_name}</span>
                                    <span class="badge">{viewer.role.label()}</span>
                                </span>
                                <SignOutButton/>
                            </nav>
                        }
                        .into_any(),
                        _ => view! {
                            <nav class="member-menu" aria-label="Account">
                                <a href="/login">"Sign in"</a>
                            </nav>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </header>
    }
}
