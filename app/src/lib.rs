//! Behalf: log in on behalf of another member — the application (routes, pages,
//! server functions and, with the `ssr` feature, the services behind them).
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    lazy_route, Lazy, LazyRoute, ParamSegment, SsrMode, StaticSegment,
};

// The lower layer: imports nothing above it.
pub mod audit_action;
#[cfg(feature = "ssr")]
pub mod audit_writer;
#[cfg(feature = "ssr")]
pub mod clock;
pub mod context;
#[cfg(feature = "ssr")]
pub mod db;
pub mod email;
pub mod error;
pub mod grant;
#[cfg(feature = "ssr")]
pub mod guard;
pub mod mode;
pub mod names;
pub mod notice;
pub mod password;
pub mod policy;
#[cfg(feature = "ssr")]
pub mod presence;
pub mod role;
pub mod rule;
#[cfg(feature = "ssr")]
pub mod secret;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod throttle;
pub mod ui;
pub mod urls;

// The areas, each over the lower layer; and the page frame over them.
pub mod account;
pub mod audit;
pub mod auth;
pub mod consent;
pub mod groups;
pub mod layout;
pub mod members;
pub mod on_behalf;
pub mod one_click;
pub mod orders;
pub mod oversight;

use crate::{
    account::{AccessHistoryPage, HomePage, SessionsPage},
    audit::ui::{AuditPage, SessionTimelinePage},
    auth::ui::LoginPage,
    consent::{presence_ui::SomeoneIn, ui::ConsentPage},
    groups::ui::{GroupDetailPage, GroupsPage},
    layout::Header,
    members::ui::MembersPage,
    on_behalf::ui::{IdentityWatch, ImpersonationBanner, OnBehalfPage, ServerNotice},
    orders::ui::OrdersPage,
    oversight::ui::ImpersonationsPage,
    ui::{NotFound, ViewerResource},
};

// Pages that a member's first page does not need, as routes loaded when first visited:
// with `cargo leptos build --split` the code of each is a chunk of its own (the server
// renders them as any other page; the browser fetches the chunk to hydrate one). Only
// the sign-in page and My account are in the first download.

/// A lazy route for each page: `Route => Page` makes the unit struct `Route` whose
/// view is `<Page/>`. Each is a `#[lazy_route]` impl of its own, because the split cuts
/// one chunk per lazy function: a generic route would be one function for all pages.
macro_rules! lazy_pages {
    ($($route:ident => $page:ident,)*) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                view! { <$page/> }.into_any()
            }
        }
    )*};
}

lazy_pages! {
    OrdersRoute => OrdersPage,
    SessionsRoute => SessionsPage,
    AccessHistoryRoute => AccessHistoryPage,
    AccessRoute => ConsentPage,
    OnBehalfRoute => OnBehalfPage,
    MembersRoute => MembersPage,
    AuditRoute => AuditPage,
    TimelineRoute => SessionTimelinePage,
    ImpersonationsRoute => ImpersonationsPage,
    GroupsRoute => GroupsPage,
    GroupDetailRoute => GroupDetailPage,
}

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // Plain links, not leptos_meta's: they never change, so the browser needs no code for them.
                <link rel="stylesheet" id="leptos" href="/pkg/behalf.css"/>
                <link rel="icon" href="data:,"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Who is signed in: resolved on the server before the first byte is sent.
    let viewer = ArcResource::new_blocking(|| (), |_| auth::whoami());
    // The title's formatter keeps a reference-counted handle of its own: the server
    // calls it once the page has rendered, outside the render's arena, where an
    // arena-held resource may be gone (under concurrent renders it panicked, "already
    // disposed", and the connection dropped; `behalf bench` found it).
    let title_viewer = viewer.clone();
    provide_context(ViewerResource(Resource::from(viewer)));

    // (The body is marked `data-hydrated` by the frontend once hydration has finished.)

    view! {
        // "[On behalf]" first in every title of a session on behalf.
        <Title formatter=move |text: String| {
            let on_behalf = matches!(title_viewer.get(), Some(Ok(Some(context::Viewer { on_behalf: Some(_), .. }))));
            if on_behalf { format!("[On behalf] {text} · Behalf") } else { format!("{text} · Behalf") }
        }/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <ImpersonationBanner/>
            <Header/>
            <SomeoneIn/>
            <ServerNotice/>
            <IdentityWatch/>
            <main id="main" tabindex="-1">
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("login") view=LoginPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("account"), StaticSegment("orders"))
                        view={Lazy::<OrdersRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("account"), StaticSegment("sessions"))
                        view={Lazy::<SessionsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("account"), StaticSegment("access-history"))
                        view={Lazy::<AccessHistoryRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("account"), StaticSegment("access"))
                        view={Lazy::<AccessRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("on-behalf"), ParamSegment("id"))
                        view={Lazy::<OnBehalfRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <ParentRoute
                        path=(StaticSegment("admin"), StaticSegment("members"))
                        view={Lazy::<MembersRoute>::new()}
                        ssr=SsrMode::Async
                    >
                        <Route path=StaticSegment("") view=|| () ssr=SsrMode::Async/>
                        <Route path=ParamSegment("id") view=|| () ssr=SsrMode::Async/>
                    </ParentRoute>
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("audit"))
                        view={Lazy::<AuditRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("audit"), StaticSegment("sessions"), ParamSegment("id"))
                        view={Lazy::<TimelineRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("impersonations"))
                        view={Lazy::<ImpersonationsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("groups"))
                        view={Lazy::<GroupsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <ParentRoute
                        path=(StaticSegment("admin"), StaticSegment("groups"), ParamSegment("group"))
                        view={Lazy::<GroupDetailRoute>::new()}
                        ssr=SsrMode::Async
                    >
                        <Route path=StaticSegment("") view=|| () ssr=SsrMode::Async/>
                        <Route
                            path=(StaticSegment("members"), ParamSegment("id"))
                            view=|| ()
                            ssr=SsrMode::Async
                        />
                    </ParentRoute>
                </Routes>
            </main>
        </Router>
    }
}
