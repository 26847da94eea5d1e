//! Sessions (lower layer, server only): rows in the database, a random token in the
//! cookie and only its hash in the row. `lookup` resolves a cookie on every request
//! (and re-checks the impersonation rule for a session on behalf); `store` starts
//! and ends sessions, each end recorded in the same transaction; `cookies` builds and
//! reads the cookies.

use crate::clock::{Millis, MINUTE, SECOND};

pub mod cookies;
pub mod lookup;
pub mod presence;
pub mod recheck;
pub mod store;
pub mod token;

pub use cookies::*;
pub use lookup::*;
pub use store::*;

/// Why a session ended; stored in `sessions.end_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    SignedOut,
    Expired,
    /// A new sign-in from the same browser replaced it.
    Replaced,
    /// Ended because its member may no longer sign in (disabled or deleted), or, on
    /// behalf, because the rule no longer holds or someone ended it.
    Revoked,
    /// The actor left a session on behalf.
    Left,
    /// The member ended a session on their behalf (**End it now**).
    EndedByMember,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Expired => "expired",
            EndReason::Replaced => "replaced",
            EndReason::Revoked => "revoked",
            EndReason::Left => "left",
            EndReason::EndedByMember => "ended_by_member",
        }
    }
}

// ---- expiry arithmetic (pure) -----------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Ended,
    IdleExpired,
    LifetimeExpired,
}

/// Whether a session row is still usable at `now`.
pub fn liveness(
    now: Millis,
    ended_at: Option<Millis>,
    idle_expires_at: Millis,
    absolute_expires_at: Millis,
) -> Liveness {
    if ended_at.is_some() {
        Liveness::Ended
    } else if now >= absolute_expires_at {
        Liveness::LifetimeExpired
    } else if now >= idle_expires_at {
        Liveness::IdleExpired
    } else {
        Liveness::Live
    }
}

/// The idle expiry after activity at `now`: never past the absolute expiry.
pub fn next_idle_expiry(now: Millis, idle_timeout: Millis, absolute_expires_at: Millis) -> Millis {
    now.saturating_add(idle_timeout).min(absolute_expires_at)
}

/// Activity is written back at most once a minute (or a tenth of the idle timeout,
/// if that is shorter), so a busy page does not turn every request into a write.
pub fn needs_touch(now: Millis, last_seen_at: Millis, idle_timeout: Millis) -> bool {
    let interval = (idle_timeout / 10).clamp(SECOND, MINUTE);
    now - last_seen_at >= interval
}

/// "Chrome on Linux" from a user agent, roughly; the full string is not needed here.
/// "Unknown device" for a session that sent none.
pub fn device_of(agent: Option<&str>) -> String {
    let Some(agent) = agent else {
        return "Unknown device".to_string();
    };
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"]
        .into_iter()
        .find(|b| agent.contains(b))
        .map(|b| match b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            _ => "Safari",
        });
    let system = ["Windows", "Android", "iPhone", "Mac OS", "Linux"]
        .into_iter()
        .find(|s| agent.contains(s))
        .map(|s| if s == "Mac OS" { "macOS" } else { s });
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => agent.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HOUR;

    #[test]
    fn a_session_lives_until_the_first_of_its_two_expiries() {
        let (idle, absolute) = (10 * MINUTE, 2 * HOUR);
        assert_eq!(liveness(0, None, idle, absolute), Liveness::Live);
        assert_eq!(liveness(idle - 1, None, idle, absolute), Liveness::Live);
        assert_eq!(liveness(idle, None, idle, absolute), Liveness::IdleExpired);
        assert_eq!(
            liveness(absolute, None, absolute + 1, absolute),
            Liveness::LifetimeExpired
        );
        assert_eq!(liveness(0, Some(0), idle, absolute), Liveness::Ended);
    }

    #[test]
    fn activity_pushes_idle_expiry_but_never_past_the_lifetime() {
        assert_eq!(
            next_idle_expiry(1_000, 30 * MINUTE, 10 * HOUR),
            1_000 + 30 * MINUTE
        );
        assert_eq!(
            next_idle_expiry(10 * HOUR - MINUTE, 30 * MINUTE, 10 * HOUR),
            10 * HOUR
        );
        assert_eq!(next_idle_expiry(i64::MAX - 5, 30 * MINUTE, i64::MAX), i64::MAX);
    }

    #[test]
    fn activity_is_written_back_at_most_once_per_interval() {
        assert!(!needs_touch(59 * SECOND, 0, 30 * MINUTE));
        assert!(needs_touch(60 * SECOND, 0, 30 * MINUTE));
        // A short idle timeout shortens the interval to a tenth of it, at least a second.
        assert!(needs_touch(6 * SECOND, 0, MINUTE));
        assert!(!needs_touch(999, 0, 2 * SECOND));
        assert!(needs_touch(SECOND, 0, 2 * SECOND));
    }

    #[test]
    fn devices_are_named_from_the_user_agent() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(device_of(Some(chrome)), "Chrome on Linux");
        assert_eq!(
            device_of(Some(
                "Mozilla/5.0 (Windows NT 10.0; rv:120.0) Gecko/20100101 Firefox/120.0"
            )),
            "Firefox on Windows"
        );
        assert_eq!(device_of(Some("reqwest")), "reqwest");
        assert_eq!(device_of(None), "Unknown device");
    }
}
