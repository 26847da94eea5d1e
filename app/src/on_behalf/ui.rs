//! The on-behalf window (`/on-behalf/{id}`), the "Login as" menu and the watch that
//! keeps every tab on the current identity. The banner is in `banner`.

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_params_map};

pub use super::banner::ImpersonationBanner;
use crate::{
    auth::whoami,
    context::Viewer,
    error::AppError,
    on_behalf::{login_as_candidates, preview_on_behalf, Preview, StartOnBehalf},
    ui::{
        field_error, load_next_on_success, ErrorPanel, FormError, PasswordField, Protected, TextField,
        ViewerResource,
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
                <li>"You will see what they see, with their permissions only, not yours. To change anything for them, choose Act on behalf (now, or later from the banner)."</li>
                <li>{format!(
                    "A banner stays on every page. The session ends when you leave it, after {} minutes at most, or sooner when idle.",
                    preview.max_minutes
                )}</li>
                <li>"Everything you do is recorded in the audit trail under your name, with the reason you give."</li>
            </ul>
            <ActionForm action=action attr:class="form" attr:novalidate=true>
                <FormError error=field_error(action.value(), "")/>
                <input type="hidden" name="member_id" value=preview.member_id/>
                <ModeChoice may_act=preview.may_act/>
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

/// Below the `ModeChoice` when the viewer may only view.
const MAY_NOT_ACT: &str = "Your role may view on this member's behalf but not act.";

/// **Mode**: View only (the default) or Act on behalf, posted as `mode`.
#[component]
fn ModeChoice(may_act: bool) -> impl IntoView {
    view! {
        <fieldset class="mode-choice">
            <legend>"Mode"</legend>
            <div class="choice">
                <input type="radio" id="mode-view" name="mode" value="view" checked=true/>
                <label for="mode-view">"View only"</label>
                <p class="muted">"See their pages as they do. Nothing can be changed."</p>
            </div>
            <div class="choice">
                <input
                    type="radio"
                    id="mode-act"
                    name="mode"
                    value="act"
                    disabled=!may_act
                    aria-describedby=(!may_act).then_some("mode-act-note")
                />
                <label for="mode-act">"Act on behalf"</label>
                <p class="muted">"Make changes as them too: orders, their profile."</p>
                {(!may_act).then(|| view! { <p id="mode-act-note" class="locked-reason">{MAY_NOT_ACT}</p> })}
            </div>
        </fieldset>
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
/// (signed in, out, switched on or off behalf, or from viewing to acting).
#[component]
pub fn IdentityWatch() -> impl IntoView {
    let ViewerResource(viewer) = expect_context();
    let identity = |v: &Option<Viewer>| {
        v.as_ref()
            .map(|v| (v.id, v.on_behalf.as_ref().map(|o| (o.session_id, o.mode))))
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
