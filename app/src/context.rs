//! What is known about the request (lower layer): who is signed in, on whose
//! behalf, and what to tell them. The wire types (`Viewer`, `OnBehalfView`) reach the
//! browser; the rest is server only.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::{clock::Millis, error::AppError, rule::Grant};
use crate::{mode::Mode, role::Role};

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
    /// In the member's own session: the live sessions on their behalf (Step 12's
    /// region **Someone is signed in on your behalf**). Empty on behalf.
    #[serde(default)]
    pub someone_in: Vec<PresenceItem>,
}

/// A live session on behalf of the member, as their own pages show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceItem {
    pub session_id: i64,
    pub actor_id: i64,
    pub actor_name: String,
    pub actor_role: Role,
    /// When it started, "10:42" (UTC), and in ms since the epoch.
    pub since: String,
    pub started_at: i64,
    pub reason: String,
    pub mode: Mode,
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
    /// View only, or acting (what this request may do).
    pub mode: Mode,
    /// Whether the actor may act now (so the banner offers **Act on behalf**).
    pub may_act: bool,
    /// The session was acting, but the actor may no longer act: it views only now.
    pub act_lost: bool,
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
        /// The member's own session only: someone may be signed in on their behalf
        /// (the lookup found a live session on their behalf), so `whoami` lists who.
        pub someone_in: bool,
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
        /// What this request may do: the session's mode, narrowed to viewing when
        /// the actor may no longer act (re-checked on every request, like the rule).
        pub mode: Mode,
        /// Whether the actor may act now (by the rule's grant and `--act-min-role`).
        pub may_act: bool,
        /// The session was started or elevated to act, but may no longer act.
        pub act_lost: bool,
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

        /// The mode of this session on behalf (`None`: the member's own session).
        pub fn on_behalf_mode(&self) -> Option<Mode> {
            self.on_behalf.as_ref().map(|o| o.mode)
        }

        /// THE switch every writer of what describes the member's own use of their
        /// account consults (docs/security.md, "The member's own data"): their
        /// last sign-in, the last-seen time of their own sessions, read marks,
        /// anything "recently viewed" or preferred. Only the member's own use moves
        /// them; a session on behalf never does, and what it changes is recorded
        /// as done on the member's behalf, by the actor.
        pub fn account_use(&self) -> AccountUse {
            match &self.on_behalf {
                None => AccountUse::Own,
                Some(on_behalf) => AccountUse::OnBehalf {
                    actor_id: on_behalf.actor.id,
                    actor_name: on_behalf.actor.display_name.clone(),
                },
            }
        }
    }

    /// Whose use of the account a request is (see `CurrentSession::account_use`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum AccountUse {
        /// The member, in their own session.
        Own,
        /// Someone on the member's behalf.
        OnBehalf { actor_id: i64, actor_name: String },
    }

    impl AccountUse {
        /// Whether the member's own-use marks (last seen, read marks…) may move.
        pub fn moves_own_marks(&self) -> bool {
            matches!(self, AccountUse::Own)
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
        /// The session on behalf was acting, but its actor may no longer act: it
        /// views only now.
        OnBehalfActLost,
        /// The member ended the session on their behalf (**End it now**).
        OnBehalfEndedByMember,
    }

    impl Notice {
        pub fn code(self) -> &'static str {
            match self {
                Notice::OnBehalfExpired => "on_behalf_expired",
                Notice::OnBehalfRevoked => "on_behalf_revoked",
                Notice::OnBehalfActLost => "on_behalf_act_lost",
                Notice::OnBehalfEndedByMember => "on_behalf_ended_by_member",
            }
        }

        pub fn parse(code: &str) -> Option<Notice> {
            [
                Notice::OnBehalfExpired,
                Notice::OnBehalfRevoked,
                Notice::OnBehalfActLost,
                Notice::OnBehalfEndedByMember,
            ]
            .into_iter()
            .find(|n| n.code() == code)
        }

        pub fn message(self) -> &'static str {
            match self {
                Notice::OnBehalfExpired => {
                    "Your session on behalf of another member has ended: its time was up. You are acting as yourself again."
                }
                Notice::OnBehalfActLost => {
                    "You may no longer act on this member's behalf, so this session is view only now. Nothing more can be changed in it."
                }
                Notice::OnBehalfEndedByMember => {
                    "The member ended your session on their behalf. You are acting as yourself again."
                }
                Notice::OnBehalfRevoked => {
                    "Your session on behalf of another member has ended: it was revoked, or the permission that allowed it no longer holds. You are acting as yourself again."
                }
            }
        }
    }
}
