//! A list loaded from the server, shown the same way everywhere: a loading line, then
//! its error, what to say when it is empty, or the list.

use leptos::prelude::*;

use super::ErrorPanel;
use crate::error::AppError;

/// Shows what `resource` loads, in a `Transition` (the list stays on screen while it
/// reloads): `loading` until it first arrives, then the error if it failed, `empty` if
/// `is_empty` says it holds nothing, else `render(list)`.
#[component]
pub fn ListOrEmpty<T>(
    resource: Resource<Result<T, AppError>>,
    is_empty: fn(&T) -> bool,
    #[prop(into)] empty: ViewFn,
    #[prop(into)] render: Callback<T, AnyView>,
    #[prop(default = "Loading…")] loading: &'static str,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
{
    view! {
        <Transition fallback=move || view! { <p class="loading">{loading}</p> }>
            {move || {
                let empty = empty.clone();
                Suspend::new(async move {
                    match resource.await {
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        Ok(list) if is_empty(&list) => empty.run(),
                        Ok(list) => render.run(list),
                    }
                })
            }}
        </Transition>
    }
}
