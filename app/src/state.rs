//! What every request handler and server function can reach (server only).

use std::sync::Arc;

use crate::{auth::password::PasswordHasher, clock::Clock, db::Db};

/// How sessions behave; set from flags and `BEHALF_*` variables by the server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A session ends after this long without a request (milliseconds).
    pub session_idle_timeout: i64,
    /// A session ends this long after it started, whatever happens (milliseconds).
    pub session_lifetime: i64,
    /// A session on behalf ends this long after it started (milliseconds).
    pub on_behalf_max_duration: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            session_idle_timeout: 30 * crate::clock::MINUTE,
            session_lifetime: 12 * crate::clock::HOUR,
            on_behalf_max_duration: 30 * crate::clock::MINUTE,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub hasher: Arc<PasswordHasher>,
    pub settings: Arc<Settings>,
}
