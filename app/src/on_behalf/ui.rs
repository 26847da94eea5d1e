//! The on-behalf window (`/on-behalf/{id}`), the impersonation banner, the
//! "Login as" menu and the watch that keeps every tab on the current identity.

use std::time::Duration;

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_params_map};

use crate::{
    auth::whoami,
    context::{OnBehalfView, Viewer},
    error::AppError,
    on_behalf::{login_as_candidates, preview_on_behalf, LeaveOnBehalf, Preview, StartOnBehalf},
    ui::{
        field_error, load_next_on_success, ErrorPanel, FormError, PasswordField, PostForm, Protected,
        TextField, ViewerResource,
    },
};

#[component]
pub fn OnBehalfPage() -> impl IntoView {
    let params = use_params_map();
    let preview = Resource::new(
        move || params.read().get("id").and_then(|id| id.parse::<i64>().ok()),
        |id| async move {
            match id {
                Some(id) => preview_on_behalf(id).await,
                None => Err(AppError::NotFound("There is no such member.".to_string())),
            }
        },
    );
    view! {
        <Title text="Login on behalf"/>
        <Protected render=move |_viewer: Viewer| {
            view! {
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match preview.await {
                            Ok(preview) => view! { <StartForm preview/> }.into_any(),
                            Err(error) => {
                                #[cfg(feature = "ssr")]
                                crate::server::set_status(error.status_code());
                                view! {
                                    <section class="card narrow">
                                        <h1>"Login on behalf is not possible"</h1>
                                        <ErrorPanel error/>
                                        <p><a href="/">"Go to My account"</a></p>
                                    </section>
                                }
                                .into_any()
                            }
                        }
                    })}
                </Suspense>
            }
        }/>
    }
}

#[component]
fn StartForm(preview: Preview) -> impl IntoView {
    let action = ServerAction::<StartOnBehalf>::new();
    // On success the new identity applies to everything: load the member's home afresh.
    load_next_on_success(action.value());
    view! {
        <section class="card narrow">
            <h1>"Login on behalf"</h1>
            <p>
                "You, " <strong>{preview.actor_name.clone()}</strong> ", are about to log in on behalf of "
                <strong>{preview.member_name.clone()}</strong>
                {format!(" ({}, {}, #{}).", preview.member_email, preview.member_role.label(), preview.member_id)}
            </p>
            <ul class="explain">
                <li>"You will see and do what they can, with their permissions only, not yours."</li>
                <li>{format!(
                    "A banner stays on every page. The session ends when you leave it, after {} minutes at most, or sooner when idle.",
                    preview.max_minutes
                )}</li>
                <li>"Everything you do is recorded in the audit trail under your name, with the reason you give."</li>
            </ul>
            <ActionForm action=action attr:class="form" attr:novalidate=true>
                <FormError error=field_error(action.value(), "")/>
                <input type="hidden" name="member_id" value=preview.member_id/>
                <PasswordField
                    id="on-behalf-password"
                    label="Your password"
                    error=field_error(action.value(), "password")
                />
                <TextField
                    id="on-behalf-reason"
                    label="Reason"
                    name="reason"
                    maxlength=500
                    required=true
                    error=field_error(action.value(), "reason")
                />
                <p class="muted hint">"For example a ticket number. Kept in the audit trail."</p>
                <button type="submit" class="button primary" disabled=move || action.pending().get()>
                    "Login on behalf"
                </button>
            </ActionForm>
        </section>
    }
}

/// "12:05" for 725 seconds; "1:02:03" past an hour.
pub fn format_time_left(ms: i64) -> String {
    let total = (ms.max(0) + 999) / 1000;
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// The banner on every page of a session on behalf, server-rendered with the page.
#[component]
pub fn ImpersonationBanner() -> impl IntoView {
    let ViewerResource(viewer) = expect_context();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match viewer.await {
                    Ok(Some(Viewer { display_name, on_behalf: Some(on_behalf), .. })) => {
                        view! { <Banner member_name=display_name on_behalf/> }.into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Banner(member_name: String, on_behalf: OnBehalfView) -> impl IntoView {
    let left = RwSignal::new(on_behalf.ends_at - on_behalf.server_now);
    // Count down from the server's clock: the browser's may be wrong.
    Effect::new(move |_| {
        let started = js_sys_now();
        let initial = on_behalf.ends_at - on_behalf.server_now;
        let handle = set_interval_with_handle(
            move || {
                let remaining = initial - (js_sys_now() - started);
                left.set(remaining);
                if remaining <= 0 {
                    // The next request finds the session over and brings the actor back.
                    let _ = window().location().reload();
                }
            },
            Duration::from_secs(1),
        )
        .ok();
        on_cleanup(move || {
            if let Some(handle) = handle {
                handle.clear();
            }
        });
    });
    let action = ServerAction::<LeaveOnBehalf>::new();
    Effect::new(move |_| match action.value().get() {
        Some(Ok(next)) => {
            let _ = window().location().set_href(&next);
        }
        Some(Err(_)) => {
            let _ = window().location().reload();
        }
        None => {}
    });
    view! {
        <section class="impersonation-banner" role="region" aria-label="Impersonation banner">
            <p class="impersonation-who">
                "You are signed in as " <strong>{member_name}</strong> " on behalf of "
                <strong>{on_behalf.actor_name}</strong> "."
            </p>
            <p class="impersonation-time">
                "Time left: " <span class="time-left">{move || format_time_left(left.get())}</span>
            </p>
            // Not `ActionForm`: the banner is in the first download (see `ui::PostForm`).
            <PostForm action class="inline-form" input=|_| LeaveOnBehalf {}>
                <button type="submit" class="button leave" disabled=move || action.pending().get()>
                    "Leave impersonation"
                </button>
            </PostForm>
        </section>
    }
}

fn js_sys_now() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

/// Under the "Login as" menu: why a member one may log in as can be missing from it.
const NOT_LISTED: &str =
    "Only members with admin access are listed here. Reach other members from their User information blade.";

/// " · Support · Acme Retail, Hooli Cloud": the role and the groups of a menu entry.
fn candidate_detail(role: crate::role::Role, groups: &[String]) -> String {
    if groups.is_empty() {
        format!(" · {}", role.label())
    } else {
        format!(" · {} · {}", role.label(), groups.join(", "))
    }
}

/// "Login as" in the header: the members with admin access whose proxy login
/// permission names the viewer; each opens the on-behalf window.
#[component]
pub fn LoginAsMenu() -> impl IntoView {
    let open = RwSignal::new(false);
    let candidates = Action::new(|_: &()| login_as_candidates());
    let toggle = move |_| {
        open.update(|o| *o = !*o);
        if open.get_untracked() && candidates.value().get_untracked().is_none() {
            candidates.dispatch(());
        }
    };
    view! {
        <div class="login-as">
            <button
                type="button"
                class="button"
                aria-expanded=move || open.get().to_string()
                aria-controls="login-as-list"
                on:click=toggle
            >
                "Login as"
            </button>
            <Show when=move || open.get()>
                <div id="login-as-list" class="login-as-list">
                    {move || match candidates.value().get() {
                        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                        Some(Err(error)) => view! { <ErrorPanel error/> }.into_any(),
                        Some(Ok(list)) if list.is_empty() => view! {
                            <p class="muted">
                                "No member with admin access has a proxy login permission that names you."
                            </p>
                            <p class="muted login-as-note">{NOT_LISTED}</p>
                        }
                        .into_any(),
                        Some(Ok(list)) => view! {
                            <ul aria-label="Log in on behalf of">
                                {list
                                    .into_iter()
                                    .map(|c| view! {
                                        <li>
                                            <a href=format!("/on-behalf/{}", c.id) target="_blank">
                                                {c.display_name}
                                                <span class="muted">{candidate_detail(c.role, &c.groups)}</span>
                                            </a>
                                        </li>
                                    })
                                    .collect_view()}
                            </ul>
                            <p class="muted login-as-note">{NOT_LISTED}</p>
                        }
                        .into_any(),
                    }}
                </div>
            </Show>
        </div>
    }
}

/// A one-time notice from the server (why a session on behalf ended).
#[component]
pub fn ServerNotice() -> impl IntoView {
    let notice = Resource::new_blocking(|| (), |_| crate::auth::notice());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                notice.await.ok().flatten().map(|message| view! {
                    <div class="notice notice-info page-notice" role="status">{message}</div>
                })
            })}
        </Suspense>
    }
}

/// Keeps a tab on the identity it was loaded with: when the tab regains focus or
/// navigates, it asks who is signed in, and reloads if that changed in another tab
/// (signed in, out, or switched on or off behalf).
#[component]
pub fn IdentityWatch() -> impl IntoView {
    let ViewerResource(viewer) = expect_context();
    let identity = |v: &Option<Viewer>| {
        v.as_ref()
            .map(|v| (v.id, v.on_behalf.as_ref().map(|o| o.session_id)))
    };
    let check = move || {
        let Some(Ok(loaded)) = viewer.get_untracked() else {
            return;
        };
        let loaded = identity(&loaded);
        leptos::task::spawn_local(async move {
            // A session on behalf that ended under this tab answers `on_behalf_ended`
            // (the request acted as no one): reload, and the server shows who is here.
            let changed = match whoami().await {
                Ok(now) => identity(&now) != loaded,
                Err(error) => error == AppError::OnBehalfEnded,
            };
            if changed {
                let _ = window().location().reload();
            }
        });
    };
    let location = use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        if previous.is_some_and(|p| p != path) {
            check();
        }
        path
    });
    Effect::new(move |_| {
        let handle = window_event_listener(ev::focus, move |_| check());
        on_cleanup(move || handle.remove());
    });
}
