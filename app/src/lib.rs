//! Behalf: log in on behalf of another member — the application (routes, pages,
//! server functions and, with the `ssr` feature, the services behind them).
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    ParamSegment, SsrMode, StaticSegment,
};

// The lower layer: imports nothing above it.
#[cfg(feature = "ssr")]
pub mod audit_writer;
#[cfg(feature = "ssr")]
pub mod clock;
pub mod context;
#[cfg(feature = "ssr")]
pub mod db;
pub mod email;
pub mod error;
#[cfg(feature = "ssr")]
pub mod guard;
pub mod password;
pub mod policy;
pub mod role;
pub mod rule;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod state;
pub mod ui;
pub mod urls;

// The areas, each over the lower layer; and the page frame over them.
pub mod account;
pub mod audit;
pub mod auth;
pub mod groups;
pub mod layout;
pub mod members;
pub mod on_behalf;
pub mod orders;

use crate::{
    account::{AccessHistoryPage, HomePage, SessionsPage},
    audit::ui::{AuditPage, SessionTimelinePage},
    auth::ui::LoginPage,
    groups::ui::{GroupBladeRoute, GroupDetailPage, GroupsPage},
    layout::Header,
    members::ui::{MemberBladeRoute, MembersPage},
    on_behalf::ui::{IdentityWatch, ImpersonationBanner, OnBehalfPage, ServerNotice},
    orders::ui::OrdersPage,
    ui::{NotFound, ViewerResource},
};

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
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
    let viewer = Resource::new_blocking(|| (), |_| auth::whoami());
    provide_context(ViewerResource(viewer));

    // Lets tests (and people reading the DOM) know the page has come alive.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/behalf.css"/>
        <Link rel="icon" href="data:,"/>
        // "[On behalf]" first in every title of a session on behalf.
        <Title formatter=move |text: String| {
            let on_behalf = matches!(viewer.get(), Some(Ok(Some(context::Viewer { on_behalf: Some(_), .. }))));
            if on_behalf { format!("[On behalf] {text} · Behalf") } else { format!("{text} · Behalf") }
        }/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <ImpersonationBanner/>
            <Header/>
            <ServerNotice/>
            <IdentityWatch/>
            <main id="main" tabindex="-1">
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("login") view=LoginPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("account"), StaticSegment("orders"))
                        view=OrdersPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("account"), StaticSegment("sessions"))
                        view=SessionsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("account"), StaticSegment("access-history"))
                        view=AccessHistoryPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("on-behalf"), ParamSegment("id"))
                        view=OnBehalfPage
                        ssr=SsrMode::Async
                    />
                    <ParentRoute
                        path=(StaticSegment("admin"), StaticSegment("members"))
                        view=MembersPage
                        ssr=SsrMode::Async
                    >
                        <Route path=StaticSegment("") view=|| () ssr=SsrMode::Async/>
                        <Route path=ParamSegment("id") view=MemberBladeRoute ssr=SsrMode::Async/>
                    </ParentRoute>
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("audit"))
                        view=AuditPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("audit"), StaticSegment("sessions"), ParamSegment("id"))
                        view=SessionTimelinePage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("groups"))
                        view=GroupsPage
                        ssr=SsrMode::Async
                    />
                    <ParentRoute
                        path=(StaticSegment("admin"), StaticSegment("groups"), ParamSegment("group"))
                        view=GroupDetailPage
                        ssr=SsrMode::Async
                    >
                        <Route path=StaticSegment("") view=|| () ssr=SsrMode::Async/>
                        <Route
                            path=(StaticSegment("members"), ParamSegment("id"))
                            view=GroupBladeRoute
                            ssr=SsrMode::Async
                        />
                    </ParentRoute>
                </Routes>
            </main>
        </Router>
    }
}
