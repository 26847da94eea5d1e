//! Shared components (lower layer): the guard for signed-in pages, error panels,
//! form fields. The header, which needs the areas, is in `layout`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_location};

use crate::{
    context::Viewer,
    error::AppError,
    mode::{on_behalf_allows, Access, OnBehalfLimit},
    password::MAX_PASSWORD_BYTES,
    policy,
    urls::login_url,
};

mod list;
mod table;

pub use list::ListOrEmpty;
pub use table::{open_blade_on_row_click, Column, DataTable};

/// 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Bumped after a change made in a blade, so the list under it loads again.
#[derive(Clone, Copy)]
pub struct ListRefresh(pub RwSignal<u32>);

/// The signed-in member (or none), loaded once per page load.
#[derive(Clone, Copy)]
pub struct ViewerResource(pub Resource<Result<Option<Viewer>, AppError>>);

/// Renders `render(viewer)` for a signed-in member; sends anyone else to the
/// sign-in page (a 302 from the server, a client-side redirect in the browser),
/// with the current address to come back to.
///
/// `render` may run more than once per page (the suspense re-renders while
/// resources settle): create a page's resources in the page component, outside
/// `Protected`, and pass them in — a resource created inside `render` is created,
/// and fetched, again on every re-render (see `members::ui::MembersPage`).
#[component]
pub fn Protected<F, V>(render: F) -> impl IntoView
where
    F: Fn(Viewer) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let ViewerResource(viewer) = expect_context();
    let location = use_location();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let render = render.clone();
                // leptos_router's `search` comes without its leading '?'.
                let search = location.search.get_untracked();
                let here = match search.trim_start_matches('?') {
                    "" => location.pathname.get_untracked(),
                    query => format!("{}?{query}", location.pathname.get_untracked()),
                };
                Suspend::new(async move {
                    match viewer.await {
                        Ok(Some(viewer)) => render(viewer).into_any(),
                        Ok(None) => view! { <Redirect path=login_url(&here)/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// Who may see a page, beside being signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// The management screens: admin access.
    Admin,
    /// The audit trail: editors and super users with admin access.
    Audit,
    /// Oversight of sessions: editors and super users with admin access, in their own
    /// session.
    Oversee,
}

impl Gate {
    fn lets_in(self, viewer: &Viewer) -> bool {
        match self {
            Gate::Admin => policy::may_use_admin(viewer.admin_access).is_ok(),
            Gate::Audit => policy::may_audit(viewer.role, viewer.admin_access).is_ok(),
            Gate::Oversee => {
                policy::may_oversee(viewer.role, viewer.admin_access, viewer.on_behalf.is_some()).is_ok()
            }
        }
    }
}

/// `Protected`, for the pages behind a `Gate`: `render(viewer)` for whom it lets in,
/// the 403 page for anyone else signed in. (The server functions behind the page
/// refuse on their own; this only chooses what to show.)
#[component]
pub fn Gated<F, V>(gate: Gate, render: F) -> impl IntoView
where
    F: Fn(Viewer) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Protected render=move |viewer: Viewer| {
            if gate.lets_in(&viewer) {
                render(viewer).into_any()
            } else {
                view! { <Forbidden/> }.into_any()
            }
        }/>
    }
}

/// What the viewer's session on behalf may not do of this kind (`None`: the page's
/// controls of this kind work), by the very predicate the server refuses with: the
/// pages render such controls disabled, with the reason beside them.
pub fn on_behalf_limit(viewer: &Viewer, access: Access) -> Option<OnBehalfLimit> {
    on_behalf_allows(viewer.on_behalf.as_ref().map(|o| o.mode), access).err()
}

/// The visible reason beside controls disabled by `on_behalf_limit` (`id`: for the
/// controls' `aria-describedby`).
#[component]
pub fn LockedReason(id: &'static str, text: &'static str) -> impl IntoView {
    view! { <p id=id class="locked-reason">{text}</p> }
}

#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    view! {
        <div class="notice notice-error" role="alert">
            <p>{error.to_string()}</p>
        </div>
    }
}

/// The page for a signed-in member who may not see this one (HTTP 403).
#[component]
pub fn Forbidden() -> impl IntoView {
    status_page(
        403,
        "Not allowed",
        "You do not have access to the management screens. If you need it, ask an editor or a super user.",
    )
}

#[component]
pub fn NotFound() -> impl IntoView {
    status_page(
        404,
        "Page not found",
        "There is nothing at this address. It may have moved, or the link may be mistyped.",
    )
}

/// A page that only says why there is nothing to show, with the HTTP status `status`
/// (set when the server renders it) and a way back to My account.
fn status_page(status: u16, title: &'static str, message: &'static str) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::set_status(status);
    #[cfg(not(feature = "ssr"))]
    let _ = status;
    view! {
        <Title text=title/>
        <section class="card narrow">
            <h1>{title}</h1>
            <p>{message}</p>
            <p><a href="/">"Go to My account"</a></p>
        </section>
    }
}

/// The message of a server action's error for `field` (`""`: errors of no field, shown
/// for the whole form), so each field shows only its own.
pub fn field_error<T: Clone + Send + Sync + 'static>(
    result: impl Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
    field: &'static str,
) -> Signal<Option<String>> {
    Signal::derive(move || match result.get() {
        Some(Err(error)) if error.field() == Some(field) || (field.is_empty() && error.field().is_none()) => {
            Some(error.to_string())
        }
        _ => None,
    })
}

/// For the actions that change who the member is (signing in, starting a login on
/// behalf), which answer with the address to go on to: once `result` holds it, loads it
/// afresh, so every part of the next page sees the new identity.
pub fn load_next_on_success(
    result: impl Get<Value = Option<Result<String, AppError>>> + Send + Sync + 'static,
) {
    Effect::new(move |_| {
        if let Some(Ok(next)) = result.get() {
            let _ = window().location().set_href(&next);
        }
    });
}

/// The error of a whole form (see `field_error` with `""`), above its fields.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|message| view! { <div class="notice notice-error" role="alert">{message}</div> })
    }
}

/// A form for a server action, for the first page's forms (sign in, sign out, the
/// profile's name, the banner's Leave impersonation) instead of `ActionForm`, whose
/// query-string decoder would otherwise be in the first download. Without JavaScript it
/// posts to the server function as it is; hydrated, `input` builds the arguments from the
/// submitted form (with `submitted_field`) and the action is dispatched.
#[component]
pub fn PostForm<S>(
    action: ServerAction<S>,
    input: fn(&leptos::ev::SubmitEvent) -> S,
    #[prop(optional)] class: &'static str,
    #[prop(optional)] novalidate: bool,
    children: Children,
) -> impl IntoView
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    view! {
        <form
            class=class
            novalidate=novalidate
            method="post"
            action=S::url()
            on:submit=move |ev| {
                ev.prevent_default();
                action.dispatch(input(&ev));
            }
        >
            {children()}
        </form>
    }
}

/// The value of the field `name` of the form a submit event came from ("" when there
/// is none): how a `PostForm` reads its fields.
pub fn submitted_field(ev: &leptos::ev::SubmitEvent, name: &str) -> String {
    use leptos::wasm_bindgen::JsCast;
    ev.target()
        .and_then(|target| target.dyn_into::<leptos::web_sys::HtmlFormElement>().ok())
        .and_then(|form| leptos::web_sys::FormData::new_with_form(&form).ok())
        .and_then(|data| data.get(name).as_string())
        .unwrap_or_default()
}

/// The frame of a form field: its label, the control, and its validation message
/// (which the control names, as `{id}-error`, in `aria-describedby`).
#[component]
pub fn Field(
    id: &'static str,
    label: &'static str,
    #[prop(into)] error: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            {children()}
            <p id=format!("{id}-error") class="field-error">{move || error.get()}</p>
        </div>
    }
}

/// A labelled input with its validation message beside it (linked for screen readers),
/// for forms posted as they are (`ActionForm`, or a plain form and `submitted_field`).
#[component]
pub fn TextField(
    id: &'static str,
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(optional)] value: Option<String>,
    #[prop(optional)] required: bool,
    #[prop(optional)] disabled: bool,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <Field id label error>
            <input
                id=id
                type=kind
                name=name
                value=value
                autocomplete=autocomplete
                maxlength=maxlength
                required=required
                disabled=disabled
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=format!("{id}-error")
            />
        </Field>
    }
}

/// The member's own current password, as sign-in and a login on behalf ask for it.
#[component]
pub fn PasswordField(
    id: &'static str,
    label: &'static str,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <TextField
            id
            label
            name="password"
            kind="password"
            autocomplete="current-password"
            maxlength=MAX_PASSWORD_BYTES
            required=true
            error
        />
    }
}

/// `TextField` bound to a signal, for forms whose fields live in signals (the blade's
/// member editor, the group forms). `form_error`, an error of the whole form, shows
/// under the field too, but only the field's own `error` marks it invalid.
#[component]
pub fn BoundField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional, into)] form_error: Option<Signal<Option<String>>>,
) -> impl IntoView {
    let message = match form_error {
        Some(other) => Signal::derive(move || error.get().or_else(|| other.get())),
        None => error,
    };
    view! {
        <Field id label error=message>
            <input
                id=id
                type=kind
                maxlength=maxlength
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=format!("{id}-error")
            />
        </Field>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-10_000), "-10,000");
    }
}

/// The member area's links (My account), on each of its pages.
#[component]
pub fn AccountNav() -> impl IntoView {
    view! {
        <nav class="account-nav" aria-label="My account">
            <a href="/">"Profile"</a>
            <a href="/account/orders">"Orders"</a>
            <a href="/account/sessions">"Sessions"</a>
            <a href="/account/access-history">"Access history"</a>
            <a href="/account/access">"Access"</a>
        </nav>
    }
}
