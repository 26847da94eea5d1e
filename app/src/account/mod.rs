//! The member's own area ("My account").

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{auth::Viewer, ui::Protected};

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="My account"/>
        <Protected render=|viewer: Viewer| view! { <AccountSummary viewer/> }/>
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
