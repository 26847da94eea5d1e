//! The region **Someone is signed in on your behalf**, on every page of the member's
//! own session while anyone is: who, since when and why, with **End it now**. It is in
//! the first download (the page frame mounts it), so it is kept small: a `PostForm`,
//! no `ActionForm`, and one event stream per page.

use leptos::prelude::*;

use crate::{
    auth::whoami,
    consent::EndOnMyBehalf,
    context::{PresenceItem, Viewer},
    mode::Mode,
    role::Role,
    ui::{submitted_field, ErrorPanel, PostForm, ViewerResource},
};

/// The region's name (and heading).
pub const SOMEONE_IN: &str = "Someone is signed in on your behalf";

/// A role as the region and the Access page write it: "support", "super user".
pub fn role_words(role: Role) -> String {
    role.as_str().replace('_', " ")
}

/// "Sid Support (support) is signed in on your behalf since 10:42 — reason: ticket 4711".
pub fn presence_sentence(item: &PresenceItem) -> String {
    format!(
        "{} ({}) is signed in on your behalf since {} — reason: {}",
        item.actor_name,
        role_words(item.actor_role),
        item.since,
        item.reason
    )
}

/// Listens to the server's event stream at `url` until the current owner is cleaned up
/// (browser only): `on_event` runs on each event named in `events`. Call it from an
/// effect that runs once, so there is one stream per page.
#[cfg(feature = "hydrate")]
pub fn listen(url: &str, events: &[&str], on_event: impl Fn() + 'static) {
    use leptos::wasm_bindgen::{closure::Closure, JsCast};

    let Ok(source) = web_sys::EventSource::new(url) else {
        return;
    };
    let callback = Closure::<dyn Fn()>::new(on_event);
    for name in events {
        let _ = source.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref());
    }
    // Held until the cleanup, which closes the stream (dropping the callback with it).
    let held = StoredValue::new_local(Some((source, callback)));
    on_cleanup(move || {
        if let Some((source, _callback)) = held.try_update_value(Option::take).flatten() {
            source.close();
        }
    });
}

/// The region, in the page frame. Shown in the member's own session only; its list
/// is the viewer's, until an event (or **End it now**) asks the server again. Only the
/// list is refreshed, not the viewer: the page under it (a form being filled in) stays.
#[component]
pub fn SomeoneIn() -> impl IntoView {
    let ViewerResource(viewer) = expect_context();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match viewer.await {
                    Ok(Some(Viewer { on_behalf: None, someone_in, .. })) => {
                        view! { <Presence initial=someone_in/> }.into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Presence(initial: Vec<PresenceItem>) -> impl IntoView {
    // `None`: not asked again yet (the viewer's list holds).
    let fresh = RwSignal::new(None::<Vec<PresenceItem>>);
    let refresh = move || {
        leptos::task::spawn_local(async move {
            if let Ok(viewer) = whoami().await {
                fresh.set(Some(viewer.map(|v| v.someone_in).unwrap_or_default()));
            }
        })
    };
    let end = ServerAction::<EndOnMyBehalf>::new();
    // Once it is over (or was already: the error says so), ask again who is in.
    Effect::new(move |_| {
        if end.value().get().is_some() {
            refresh();
        }
    });
    // Live: a session on the member's behalf starting or ending anywhere.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        listen(
            "/api/v1/profile/events",
            &["on_behalf_started", "on_behalf_ended"],
            refresh,
        )
    });
    let items = move || fresh.get().unwrap_or_else(|| initial.clone());
    move || {
        let items = items();
        (!items.is_empty()).then(|| {
            view! {
                <section class="presence" role="region" aria-label=SOMEONE_IN>
                    <h2 class="presence-title">{SOMEONE_IN}</h2>
                    {move || end.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
                    <ul class="presence-list">
                        {items.into_iter().map(|item| view! { <PresenceEntry item end/> }).collect_view()}
                    </ul>
                </section>
            }
        })
    }
}

#[component]
fn PresenceEntry(item: PresenceItem, end: ServerAction<EndOnMyBehalf>) -> impl IntoView {
    let what = match item.mode {
        Mode::View => "They can see your account but change nothing.",
        Mode::Act => "They can make changes as you.",
    };
    view! {
        <li>
            <p class="presence-who">{presence_sentence(&item)}</p>
            <p class="presence-mode">{what}</p>
            <PostForm
                action=end
                class="inline-form"
                input=|ev| EndOnMyBehalf { session_id: submitted_field(ev, "session_id").parse().unwrap_or_default() }
            >
                <input type="hidden" name="session_id" value=item.session_id/>
                <button type="submit" class="button end-now" disabled=move || end.pending().get()>
                    "End it now"
                </button>
            </PostForm>
        </li>
    }
}
