#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Readable panics in the console while developing; the release build leaves the
    // formatting code out (panics abort there).
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    // Lazy routes (split chunks) hydrate once their chunk has loaded, so hydration is
    // asynchronous (`hydrate_body` would panic on a page whose route is lazy). When it
    // has finished, the body says so: tests (and people reading the DOM) wait for it.
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = leptos::prelude::document().body() else {
            return;
        };
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
