//! The `behalf` server: configuration, start-up, the request pipeline, the HTTP
//! surface (pages, server functions, the JSON API, one-click pages) and the CLI
//! commands. See docs/architecture.md for what may import what.

pub mod access;
pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod errors;
pub mod html;
pub mod listen;
pub mod metrics;
pub mod pages;
pub mod presence;
pub mod router;
pub mod security;
pub mod seed;
pub mod server_fns;
pub mod session;
pub mod startup;
pub mod state;

pub use cli::{describe, CliResult};
pub use startup::{
    app_state, audit_key_path, leptos_options, link_key, load_audit_key, open_database, set_audit_key_file,
    settings_from, spawn_on_free_port, spawn_with_limits,
};
