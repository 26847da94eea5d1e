//! What every handler and layer may read.

use app::state::AppState;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

/// Everything a handler can reach.
#[derive(Clone, FromRef)]
pub struct ServerState {
    pub app: AppState,
    pub leptos_options: LeptosOptions,
    /// Trust X-Forwarded-For / X-Forwarded-Proto.
    pub trust_proxy: bool,
}

/// Request bodies of the JSON API are at most this long.
pub const API_BODY_LIMIT: usize = 16 * 1024;

/// Every other request body (a server function's form) is at most this long.
pub const BODY_LIMIT: usize = 256 * 1024;
