//! The blade's One-click link panel: create a link (shown once, with Copy), list the
//! member's outstanding links, revoke one.

use leptos::{ev, prelude::*};

use crate::{
    one_click::{one_click_links, CreateOneClickLink, CreatedLink, RevokeOneClickLink},
    ui::{field_error, ErrorPanel},
};

/// Copies `text` to the clipboard; says whether the browser accepted it.
#[cfg(feature = "hydrate")]
async fn copy_to_clipboard(text: String) -> bool {
    use leptos::wasm_bindgen::{JsCast, JsValue};
    let Some(window) = leptos::web_sys::window() else {
        return false;
    };
    let get = |target: &JsValue, name: &str| js_sys::Reflect::get(target, &JsValue::from_str(name)).ok();
    let Some(clipboard) = get(&window, "navigator").and_then(|n| get(&n, "clipboard")) else {
        return false;
    };
    let Some(write) = get(&clipboard, "writeText").and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else {
        return false;
    };
    let Ok(promise) = write.call1(&clipboard, &JsValue::from_str(&text)) else {
        return false;
    };
    let Ok(promise) = promise.dyn_into::<js_sys::Promise>() else {
        return false;
    };
    wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
}

#[cfg(not(feature = "hydrate"))]
async fn copy_to_clipboard(_text: String) -> bool {
    false
}

/// The page's own origin, so the link shown is one a person can paste anywhere.
fn absolute(path: &str) -> String {
    #[cfg(feature = "hydrate")]
    if let Some(origin) = leptos::web_sys::window().and_then(|w| w.location().origin().ok()) {
        return format!("{origin}{path}");
    }
    path.to_string()
}

/// The panel for member `member_id` (`name` is whom the link signs in as).
#[component]
pub fn OneClickPanel(member_id: i64, name: String) -> impl IntoView {
    let create = ServerAction::<CreateOneClickLink>::new();
    let revoke = ServerAction::<RevokeOneClickLink>::new();
    let links = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        move |_| one_click_links(member_id),
    );
    let minutes = RwSignal::new(String::new());
    let created = create.value();
    let minutes_error = field_error(created, "expires_in_minutes");
    let create_error = field_error(created, "");
    let revoke_error = field_error(revoke.value(), "");
    let copied = RwSignal::new(None::<bool>);
    let on_create = move |event: ev::SubmitEvent| {
        event.prevent_default();
        copied.set(None);
        let typed = minutes.get_untracked();
        let expires_in_minutes = match typed.trim() {
            "" => None,
            text => match text.parse::<i64>() {
                Ok(n) => Some(n),
                // Sent as it cannot be: the server's message says what is allowed.
                Err(_) => Some(0),
            },
        };
        create.dispatch(CreateOneClickLink {
            member_id,
            expires_in_minutes,
        });
    };
    let shown_link = move || match created.get() {
        Some(Ok(CreatedLink { link, path })) => {
            let url = absolute(&path);
            let copy_url = url.clone();
            let copy = move |_| {
                let text = copy_url.clone();
                leptos::task::spawn_local(async move { copied.set(Some(copy_to_clipboard(text).await)) });
            };
            Some(view! {
                <div class="notice notice-success one-click-created" role="status">
                    <label for="one-click-url">"Login link (shown only now)"</label>
                    <div class="copy-row">
                        <input
                            id="one-click-url"
                            type="text"
                            readonly
                            value=url
                            on:focus=move |ev| {
                                use leptos::wasm_bindgen::JsCast;
                                if let Some(input) = ev
                                    .target()
                                    .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlInputElement>().ok())
                                {
                                    input.select();
                                }
                            }
                        />
                        <button type="button" class="button" on:click=copy>"Copy"</button>
                    </div>
                    <p class="muted">
                        {format!("Expires {}. ", link.expires_at_text)}
                        {move || match copied.get() {
                            Some(true) => "Copied to the clipboard.",
                            Some(false) => "The browser refused to copy: select the link and copy it yourself.",
                            None => "",
                        }}
                    </p>
                </div>
            })
        }
        _ => None,
    };
    view! {
        <section class="one-click" aria-labelledby="one-click-title">
            <h3 id="one-click-title">"One-click login links"</h3>
            <p class="muted">
                {format!(
                    "A link signs {name} in as themselves, once, without a password. Whoever holds it can use it: give it to {name} only.",
                )}
            </p>
            <form class="one-click-form" on:submit=on_create novalidate>
                <div class="field">
                    <label for="one-click-minutes">"Valid for (minutes)"</label>
                    <input
                        id="one-click-minutes"
                        type="number"
                        inputmode="numeric"
                        min="1"
                        placeholder=move || {
                            links
                                .get()
                                .and_then(Result::ok)
                                .map(|list| format!("{} (default)", list.default_minutes))
                                .unwrap_or_default()
                        }
                        prop:value=move || minutes.get()
                        on:input=move |ev| minutes.set(event_target_value(&ev))
                        aria-invalid=move || minutes_error.get().is_some().then_some("true")
                        aria-describedby="one-click-minutes-error"
                    />
                    <p id="one-click-minutes-error" class="field-error">{move || minutes_error.get()}</p>
                </div>
                <button type="submit" class="button primary" disabled=move || create.pending().get()>
                    "Create link"
                </button>
            </form>
            <p class="notice notice-error" role="alert" hidden=move || create_error.get().is_none()>
                {create_error}
            </p>
            {shown_link}
            <p class="notice notice-error" role="alert" hidden=move || revoke_error.get().is_none()>
                {revoke_error}
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match links.await {
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        Ok(list) if list.links.is_empty() => {
                            view! { <p class="muted">"No outstanding links."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <div class="table-wrap">
                                    <table class="data-table" aria-label="Outstanding one-click links">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Created by"</th>
                                                <th scope="col">"Created"</th>
                                                <th scope="col">"Expires"</th>
                                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {list
                                                .links
                                                .into_iter()
                                                .map(|link| {
                                                    let id = link.id;
                                                    view! {
                                                        <tr>
                                                            <td>{link.created_by_name}</td>
                                                            <td>{link.created_at_text}</td>
                                                            <td>{link.expires_at_text}</td>
                                                            <td>
                                                                <button
                                                                    type="button"
                                                                    class="button danger small"
                                                                    aria-label=format!("Revoke link {id}")
                                                                    on:click=move |_| {
                                                                        revoke.dispatch(RevokeOneClickLink { id });
                                                                    }
                                                                >
                                                                    "Revoke"
                                                                </button>
                                                            </td>
                                                        </tr>
                                                    }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
