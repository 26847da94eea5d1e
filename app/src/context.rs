//! What is known about the request (lower layer): who is signed in, on whose
//! behalf, and what to tell them. The wire types (`Viewer`, `OnBehalfView`) reach the
//! browser; the rest is server only.

use serde::{Deserialize, Serialize};

use crate::role::Role;
#[cfg(feature = "ssr")]
use crate::{clock::Millis, error::AppError, rule::Grant};

/// The signed-in member, as the pages see them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub admin_access: bool,
    pub member_since: String,
    pub last_sign_in: Option<String>,
    /// Set while this is a session on behalf of the member above.
    pub on_behalf: Option<OnBehalfView>,
}

/// The session on behalf the current page runs in, for the banner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnBehalfView {
    pub session_id: i64,
    pub actor_id: i64,
    pub actor_name: String,
    /// When it ends at the latest (ms since the epoch, server time).
    pub ends_at: i64,
    /// The server's time when this was read, so the browser can count down from
    /// the server's clock rather than its own.
    pub server_now: i64,
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use super::*;

    /// A member as the server knows them (never with the password hash).
    #[derive(Clone, Debug, PartialEq)]
    pub struct MemberRow {
        pub id: i64,
        pub email: String,
        pub display_name: String,
        pub role: Role,
        pub admin_access: bool,
        pub login_enabled: bool,
        pub created_at: Millis,
        pub last_sign_in_at: Option<Millis>,
    }

    /// The signed-in session of the current request.
    #[derive(Clone, Debug)]
    pub struct CurrentSession {
        pub id: i64,
        pub member: MemberRow,
        pub created_at: Millis,
        pub idle_expires_at: Millis,
        pub absolute_expires_at: Millis,
        /// Set when this is a session on behalf of `member`.
        pub on_behalf: Option<OnBehalf>,
    }

    /// The real person behind a session on behalf, and how it came about.
    #[derive(Clone, Debug)]
    pub struct OnBehalf {
        pub actor: MemberRow,
        /// The actor's own session, resumed when this one ends.
        pub parent_id: i64,
        pub reason: String,
        /// Why the rule holds now (`None`: it no longer does).
        pub grant: Option<Grant>,
        /// The actor is neither deleted nor barred from signing in.
        pub actor_usable: bool,
    }

    impl CurrentSession {
        /// The real person acting: the actor while on behalf, else the member.
        pub fn actor(&self) -> &MemberRow {
            self.on_behalf.as_ref().map_or(&self.member, |o| &o.actor)
        }

        /// The session on behalf, if this is one.
        pub fn on_behalf_id(&self) -> Option<i64> {
            self.on_behalf.as_ref().map(|_| self.id)
        }
    }

    /// What the server learned about the request before any page or server function ran.
    #[derive(Clone, Debug, Default)]
    pub struct RequestContext {
        pub session: Option<CurrentSession>,
        /// True when the browser sent a session cookie we could not honour (to clear it).
        pub stale_cookie: bool,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
        /// The browser's `Sec-Fetch-Site` (`same-origin`, `cross-site`, …), if sent.
        pub fetch_site: Option<String>,
        /// True when the request reached us over https (directly or via a proxy).
        pub https: bool,
        /// Why the identity changed since the last page, to tell the person once.
        pub notice: Option<Notice>,
    }

    impl RequestContext {
        pub fn require_session(&self) -> Result<&CurrentSession, AppError> {
            self.session.as_ref().ok_or(AppError::Unauthenticated)
        }
    }

    /// Why a session on behalf ended without its actor asking.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Notice {
        OnBehalfExpired,
        OnBehalfRevoked,
    }

    impl Notice {
        pub fn code(self) -> &'static str {
            match self {
                Notice::OnBehalfExpired => "on_behalf_expired",
                Notice::OnBehalfRevoked => "on_behalf_revoked",
            }
        }

        pub fn parse(code: &str) -> Option<Notice> {
            [Notice::OnBehalfExpired, Notice::OnBehalfRevoked]
                .into_iter()
                .find(|n| n.code() == code)
        }

        pub fn message(self) -> &'static str {
            match self {
                Notice::OnBehalfExpired => {
                    "Your session on behalf of another member has ended: its time was up. You are acting as yourself again."
                }
                Notice::OnBehalfRevoked => {
                    "Your session on behalf of another member has ended: it was revoked, or the permission that allowed it no longer holds. You are acting as yourself again."
                }
            }
        }
    }
}
