//! The impersonation banner on every page of a session on behalf: who is viewing or
//! acting as whom, the time left, **Act on behalf** (elevating a view-only session)
//! and **Leave impersonation**; a reload when the session ends under the actor (an
//! event stream). It is in the first download: its forms are `PostForm`s, not
//! `ActionForm`s (see `ui::PostForm`).

use std::time::Duration;

use leptos::prelude::*;

use crate::{
    context::{OnBehalfView, Viewer},
    mode::Mode,
    on_behalf::{ElevateOnBehalf, LeaveOnBehalf},
    password::Password,
    ui::{field_error, submitted_field, FormError, PasswordField, PostForm, TextField, ViewerResource},
};

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
    // When the session ends under the actor (the member chose **End it now**, or it
    // was revoked), the server says so at once: a reload brings the actor back to their
    // own session, with a notice why. Not when the actor is leaving: that goes on to
    // its own page.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::consent::presence_ui::listen("/api/on-behalf/events", &["on_behalf_ended"], move || {
            let leaving = action.pending().get_untracked() || action.value().get_untracked().is_some();
            if !leaving {
                let _ = window().location().reload();
            }
        })
    });
    let viewing = on_behalf.mode == Mode::View;
    let tail = match (viewing, on_behalf.act_lost) {
        (false, _) => ".",
        (true, false) => " — view only.",
        (true, true) => " — view only: you may no longer act on their behalf.",
    };
    view! {
        <section class="impersonation-banner" role="region" aria-label="Impersonation banner">
            <p class="impersonation-who">
                "You, " <strong>{on_behalf.actor_name}</strong> ", are " {on_behalf.mode.verb()} " as "
                <strong>{member_name}</strong> {tail}
            </p>
            <p class="impersonation-time">
                "Time left: " <span class="time-left">{move || format_time_left(left.get())}</span>
            </p>
            {(viewing && on_behalf.may_act).then(|| view! { <Elevate/> })}
            <PostForm action class="inline-form" input=|_| LeaveOnBehalf {}>
                <button type="submit" class="button leave" disabled=move || action.pending().get()>
                    "Leave impersonation"
                </button>
            </PostForm>
        </section>
    }
}

/// **Act on behalf**: reveals the form that elevates this view-only session to act
/// (the actor's own password again, and a reason); on success the page loads afresh
/// under the new cookie. The form is rendered with the banner and only hidden, which
/// costs the first download less than a `Show` (see `make wasm-budget`).
#[component]
fn Elevate() -> impl IntoView {
    let open = RwSignal::new(false);
    let action = ServerAction::<ElevateOnBehalf>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = action.value().get() {
            let _ = window().location().reload();
        }
    });
    // Focus follows: into the form when it opens, back to the button when it closes.
    let toggle = move |to: bool, focus: &'static str| {
        open.set(to);
        request_animation_frame(move || {
            use leptos::wasm_bindgen::JsCast;
            if let Some(element) = document().get_element_by_id(focus) {
                let _ = element.unchecked_into::<leptos::web_sys::HtmlElement>().focus();
            }
        });
    };
    view! {
        <button
            type="button"
            id="act-on-behalf"
            class="button act"
            hidden=move || open.get()
            on:click=move |_| toggle(true, "elevate-password")
        >
            "Act on behalf"
        </button>
        <div class="elevate-form" hidden=move || !open.get()>
            <PostForm
                action
                novalidate=true
                input=|ev| ElevateOnBehalf {
                    password: Password::new(submitted_field(ev, "password")),
                    reason: submitted_field(ev, "reason"),
                }
            >
                <FormError error=field_error(action.value(), "")/>
                <PasswordField id="elevate-password" label="Your password" error=field_error(action.value(), "password")/>
                <TextField
                    id="elevate-reason"
                    label="Reason"
                    name="reason"
                    maxlength=500
                    required=true
                    error=field_error(action.value(), "reason")
                />
                <div class="elevate-buttons">
                    <button type="submit" class="button primary" disabled=move || action.pending().get()>
                        "Start acting"
                    </button>
                    // A reset: the fields empty themselves.
                    <button
                        type="reset"
                        class="button"
                        on:click=move |_| {
                            action.clear();
                            toggle(false, "act-on-behalf");
                        }
                    >
                        "Cancel"
                    </button>
                </div>
            </PostForm>
        </div>
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
