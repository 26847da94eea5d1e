//! The blade's One-click link panel: create a link (shown once, with Copy), list the
//! member's outstanding links, revoke one.

use leptos::{ev, prelude::*};

use crate::{
    error::AppError,
    one_click::{
        one_click_links, CreateOneClickLink, CreatedLink, LinkList, OneClickLink, RevokeOneClickLink,
    },
    ui::{field_error, Column, DataTable, Field, ListOrEmpty},
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

/// What the minutes field holds, as the server function takes it: `None` (the default
/// lifetime) when it is empty, and 0 when it is not a number, which is sent as it cannot
/// be: the server's message says what is allowed.
fn typed_minutes(typed: &str) -> Option<i64> {
    match typed.trim() {
        "" => None,
        text => Some(text.parse::<i64>().unwrap_or(0)),
    }
}

/// The headings of the outstanding links.
const LINK_COLUMNS: &[Column] = &[
    Column::Text("Created by"),
    Column::Text("Created"),
    Column::Text("Expires"),
    Column::Actions,
];

/// The panel for member `member_id` (`name` is whom the link signs in as).
#[component]
pub fn OneClickPanel(member_id: i64, name: String) -> impl IntoView {
    let create = ServerAction::<CreateOneClickLink>::new();
    let revoke = ServerAction::<RevokeOneClickLink>::new();
    let links = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        move |_| one_click_links(member_id),
    );
    let created = create.value();
    let create_error = field_error(created, "");
    let revoke_error = field_error(revoke.value(), "");
    let copied = RwSignal::new(None::<bool>);
    let shown_link = move || match created.get() {
        Some(Ok(CreatedLink { link, path })) => Some(view! {
            <CreatedLinkNotice url=absolute(&path) expires=link.expires_at_text copied/>
        }),
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
            <CreateLinkForm member_id create links copied/>
            <p class="notice notice-error" role="alert" hidden=move || create_error.get().is_none()>
                {create_error}
            </p>
            {shown_link}
            <p class="notice notice-error" role="alert" hidden=move || revoke_error.get().is_none()>
                {revoke_error}
            </p>
            <ListOrEmpty
                resource=links
                is_empty=|list: &LinkList| list.links.is_empty()
                empty=|| view! { <p class="muted">"No outstanding links."</p> }
                render=move |list: LinkList| view! { <LinkTable links=list.links revoke/> }.into_any()
            />
        </section>
    }
    .into_any()
}

/// The form that creates a link, valid for the minutes typed (the default when none).
/// `copied` is reset: a new link has not been copied yet.
#[component]
fn CreateLinkForm(
    member_id: i64,
    create: ServerAction<CreateOneClickLink>,
    links: Resource<Result<LinkList, AppError>>,
    copied: RwSignal<Option<bool>>,
) -> impl IntoView {
    let minutes = RwSignal::new(String::new());
    let minutes_error = field_error(create.value(), "expires_in_minutes");
    let on_create = move |event: ev::SubmitEvent| {
        event.prevent_default();
        copied.set(None);
        create.dispatch(CreateOneClickLink {
            member_id,
            expires_in_minutes: typed_minutes(&minutes.get_untracked()),
        });
    };
    let default_minutes = move || {
        links
            .get()
            .and_then(Result::ok)
            .map(|list| format!("{} (default)", list.default_minutes))
            .unwrap_or_default()
    };
    view! {
        <form class="one-click-form" on:submit=on_create novalidate>
            <Field id="one-click-minutes" label="Valid for (minutes)" error=minutes_error>
                <input
                    id="one-click-minutes"
                    type="number"
                    inputmode="numeric"
                    min="1"
                    placeholder=default_minutes
                    prop:value=move || minutes.get()
                    on:input=move |ev| minutes.set(event_target_value(&ev))
                    aria-invalid=move || minutes_error.get().is_some().then_some("true")
                    aria-describedby="one-click-minutes-error"
                />
            </Field>
            <button type="submit" class="button primary" disabled=move || create.pending().get()>
                "Create link"
            </button>
        </form>
    }
}

/// The link just created (`url`, valid until `expires`), shown only now, with Copy;
/// `copied` says whether the browser took it.
#[component]
fn CreatedLinkNotice(url: String, expires: String, copied: RwSignal<Option<bool>>) -> impl IntoView {
    let copy_url = url.clone();
    let copy = move |_| {
        let text = copy_url.clone();
        leptos::task::spawn_local(async move { copied.set(Some(copy_to_clipboard(text).await)) });
    };
    view! {
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
                {format!("Expires {expires}. ")}
                {move || match copied.get() {
                    Some(true) => "Copied to the clipboard.",
                    Some(false) => "The browser refused to copy: select the link and copy it yourself.",
                    None => "",
                }}
            </p>
        </div>
    }
}

/// The member's outstanding links, each with Revoke.
#[component]
fn LinkTable(links: Vec<OneClickLink>, revoke: ServerAction<RevokeOneClickLink>) -> impl IntoView {
    view! {
        <DataTable label="Outstanding one-click links" columns=LINK_COLUMNS>
            {links
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
        </DataTable>
    }
}
