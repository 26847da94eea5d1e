//! The sign-in page and the sign-out button.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    auth::{Login, Logout},
    password::Password,
    ui::{
        field_error, load_next_on_success, submitted_field, FormError, PasswordField, PostForm, TextField,
        ViewerResource,
    },
    urls::safe_next,
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let ViewerResource(viewer) = expect_context();
    let query = use_query_map();
    let next = move || safe_next(query.read_untracked().get("next").as_deref());
    view! {
        <Title text="Sign in"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match viewer.await {
                    // Already signed in (or just signed in without JavaScript): go on.
                    Ok(Some(_)) => view! { <Redirect path=next()/> }.into_any(),
                    _ => view! { <LoginForm next=next()/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn LoginForm(next: String) -> impl IntoView {
    let action = ServerAction::<Login>::new();
    load_next_on_success(action.value());
    view! {
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <p class="muted">"Sign in with the email address and password of your Behalf account."</p>
            <PostForm
                action
                class="form"
                novalidate=true
                input=|ev| {
                    let next = submitted_field(ev, "next");
                    Login {
                        email: submitted_field(ev, "email"),
                        password: Password::new(submitted_field(ev, "password")),
                        next: (!next.is_empty()).then_some(next),
                    }
                }
            >
                <FormError error=field_error(action.value(), "")/>
                <input type="hidden" name="next" value=next/>
                <TextField
                    id="login-email"
                    label="Email"
                    name="email"
                    kind="email"
                    autocomplete="username"
                    maxlength=254
                    required=true
                    error=field_error(action.value(), "email")
                />
                <PasswordField
                    id="login-password"
                    label="Password"
                    error=field_error(action.value(), "password")
                />
                <button type="submit" class="button primary" disabled=move || action.pending().get()>
                    "Sign in"
                </button>
            </PostForm>
        </section>
    }
}

#[component]
pub fn SignOutButton() -> impl IntoView {
    let action = ServerAction::<Logout>::new();
    // Whatever the answer (even "already signed out"), the sign-in page is next.
    Effect::new(move |_| {
        if action.value().get().is_some() {
            let _ = window().location().set_href("/login");
        }
    });
    view! {
        <PostForm action class="inline-form" input=|_| Logout {}>
            <button type="submit" class="button" disabled=move || action.pending().get()>
                "Sign out"
            </button>
        </PostForm>
    }
}
