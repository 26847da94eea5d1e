//! The member's consent (Step 12), as the lower layer knows it: the member's setting,
//! the durations a grant or request may have, a member grant as lists show it, and
//! (server only) the SQL pieces that feed the rule its two new inputs. The consent
//! area (`consent/`) does everything else; the session lookup, the start of a session
//! on behalf and the blade read the rule's inputs from here.

use serde::{Deserialize, Serialize};

use crate::{mode::Mode, role::Role};

/// What a role grant alone is worth for this member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum RoleGrants {
    /// A role grant lets staff in, as before Step 12. The default.
    #[default]
    Allowed,
    /// A role grant alone is not enough: the member's grant (or an approved access
    /// request) is needed, or an explicit proxy login permission.
    Ask,
}

impl RoleGrants {
    pub const ALL: [RoleGrants; 2] = [RoleGrants::Allowed, RoleGrants::Ask];

    pub fn as_str(self) -> &'static str {
        match self {
            RoleGrants::Allowed => "allowed",
            RoleGrants::Ask => "ask",
        }
    }

    pub fn parse(text: &str) -> Option<RoleGrants> {
        RoleGrants::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The setting in force: the member's own, unless the server requires consent
    /// of everyone (`--consent required`), which a member cannot loosen.
    pub fn in_force(self, consent_required: bool) -> RoleGrants {
        if consent_required {
            RoleGrants::Ask
        } else {
            self
        }
    }
}

/// How long a grant lasts (or an approved request's grant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum GrantDuration {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "1w")]
    Week,
}

impl GrantDuration {
    pub const ALL: [GrantDuration; 3] = [GrantDuration::Hour, GrantDuration::Day, GrantDuration::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantDuration::Hour => "1h",
            GrantDuration::Day => "1d",
            GrantDuration::Week => "1w",
        }
    }

    pub fn parse(text: &str) -> Option<GrantDuration> {
        GrantDuration::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// What people read: "1 hour", "1 day", "1 week".
    pub fn label(self) -> &'static str {
        match self {
            GrantDuration::Hour => "1 hour",
            GrantDuration::Day => "1 day",
            GrantDuration::Week => "1 week",
        }
    }

    /// Milliseconds.
    pub fn millis(self) -> i64 {
        const HOUR: i64 = 3_600_000;
        match self {
            GrantDuration::Hour => HOUR,
            GrantDuration::Day => 24 * HOUR,
            GrantDuration::Week => 7 * 24 * HOUR,
        }
    }
}

/// A live member grant, as the member's Access page and the blade list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    pub id: i64,
    /// `None`: any support engineer.
    pub grantee_id: Option<i64>,
    /// "Any support engineer", or the grantee's name.
    pub grantee_name: String,
    pub mode: Mode,
    pub duration: GrantDuration,
    /// When it ends (ms since the epoch) and as people read it (UTC).
    pub expires_at: i64,
    pub expires: String,
}

/// What the blade shows of a member's consent, for the viewer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BladeConsent {
    /// The setting in force (the server's `--consent required` included).
    pub role_grants: RoleGrants,
    /// The member's live grants.
    pub grants: Vec<GrantView>,
    /// The rule refuses the viewer only for want of the member's consent: a request
    /// is what is needed (the blade offers **Request access**).
    pub can_request: bool,
    /// The viewer's request to this member waits for an answer.
    pub pending_request: bool,
}

/// Who may be given a grant by name: people the role grant would let in (support
/// engineers and above, with admin access, ranking above the member).
pub fn may_be_granted(member_role: Role, grantee_role: Role, grantee_admin_access: bool) -> bool {
    grantee_role >= Role::Support && grantee_admin_access && grantee_role.rank() > member_role.rank()
}

#[cfg(feature = "ssr")]
pub use self::sql::*;

#[cfg(feature = "ssr")]
mod sql {
    use crate::{
        clock::format_utc,
        db::{with_db, Db},
        error::AppError,
        mode::Mode,
    };

    use super::{GrantDuration, GrantView, RoleGrants};

    /// The broadest live member grant of member `member` (an SQL expression) covering
    /// actor `actor` at `now`: 2 to act, 1 to view, NULL for none. A grant names the
    /// actor, or (no grantee) anyone the role grant would let in.
    pub fn member_grant_sql(member: &str, actor: &str, now: &str) -> String {
        format!(
            "(SELECT CAST(MAX(CASE WHEN g.mode = 'act' THEN 2 ELSE 1 END) AS BIGINT) FROM member_grants g \
             WHERE g.member_id = {member} AND (g.grantee_id = {actor} OR g.grantee_id IS NULL) \
             AND g.revoked_at IS NULL AND g.expires_at > {now})"
        )
    }

    /// Whether member `member` consents to actor `actor` signing in as them by other
    /// means than a session on behalf (a one-click link the actor made), at `now`:
    /// `(stored setting, broadest live grant, explicit permissions written by others)`.
    pub async fn link_consent(
        db: &Db,
        member: i64,
        actor: i64,
        now: i64,
    ) -> Result<(String, Option<i64>, i64), AppError> {
        let row: Option<(String, Option<i64>, i64)> = with_db!(db, pool => {
            sqlx::query_as(&format!(
                "SELECT m.role_grants, {} AS member_grant, \
                 (SELECT COUNT(*) FROM proxy_permissions p WHERE p.member_id = m.id AND p.actor_id = $2 \
                  AND (p.granted_by IS NULL OR p.granted_by <> $2)) FROM members m WHERE m.id = $1",
                member_grant_sql("m.id", "$2", "$3")
            ))
            .bind(member)
            .bind(actor)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or_else(|| ("allowed".to_string(), None, 0)))
    }

    /// A one-click link made by someone else signs in as the member fully (as acting):
    /// when the member asks first, only a live grant to act or an explicit permission
    /// someone else wrote lets its maker make it, or it be used.
    pub fn link_allowed(consent: &(String, Option<i64>, i64), consent_required: bool) -> bool {
        let (stored, grant, explicit) = consent;
        !asks_first(stored, consent_required) || grant_mode(*grant) == Some(Mode::Act) || *explicit > 0
    }

    /// The mode of `member_grant_sql`'s answer.
    pub fn grant_mode(stored: Option<i64>) -> Option<Mode> {
        match stored {
            Some(2) => Some(Mode::Act),
            Some(_) => Some(Mode::View),
            None => None,
        }
    }

    /// Whether a member whose stored setting is `stored` asks first.
    pub fn asks_first(stored: &str, consent_required: bool) -> bool {
        RoleGrants::parse(stored)
            .unwrap_or_default()
            .in_force(consent_required)
            == RoleGrants::Ask
    }

    type GrantRow = (i64, Option<i64>, Option<String>, String, String, i64);

    /// Member `member`'s live grants at `now`, soonest to end first.
    pub async fn live_grants(db: &Db, member: i64, now: i64) -> Result<Vec<GrantView>, AppError> {
        let rows: Vec<GrantRow> = with_db!(db, pool => {
            sqlx::query_as(
                "SELECT g.id, g.grantee_id, m.display_name, g.mode, g.duration, g.expires_at \
                 FROM member_grants g LEFT JOIN members m ON m.id = g.grantee_id \
                 WHERE g.member_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2 \
                 ORDER BY g.expires_at, g.id LIMIT 100",
            )
            .bind(member)
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, grantee_id, name, mode, duration, expires_at)| GrantView {
                id,
                grantee_id,
                grantee_name: match grantee_id {
                    None => "Any support engineer".to_string(),
                    Some(_) => name.unwrap_or_default(),
                },
                mode: Mode::parse(&mode).unwrap_or_default(),
                duration: GrantDuration::parse(&duration).unwrap_or(GrantDuration::Hour),
                expires_at,
                expires: format_utc(expires_at),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_on_the_wire_are_stable() {
        for d in GrantDuration::ALL {
            assert_eq!(GrantDuration::parse(d.as_str()), Some(d));
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{}\"", d.as_str()));
        }
        assert_eq!(GrantDuration::Day.millis(), 86_400_000);
        assert_eq!(RoleGrants::parse("ask"), Some(RoleGrants::Ask));
        assert_eq!(RoleGrants::parse("never"), None);
        assert_eq!(
            serde_json::to_string(&RoleGrants::Allowed).unwrap(),
            "\"allowed\""
        );
    }

    #[test]
    fn the_server_setting_makes_everyone_ask_and_cannot_be_loosened() {
        assert_eq!(RoleGrants::Allowed.in_force(true), RoleGrants::Ask);
        assert_eq!(RoleGrants::Ask.in_force(true), RoleGrants::Ask);
        assert_eq!(RoleGrants::Allowed.in_force(false), RoleGrants::Allowed);
    }

    #[test]
    fn only_staff_who_outrank_the_member_may_be_granted() {
        assert!(may_be_granted(Role::Member, Role::Support, true));
        assert!(!may_be_granted(Role::Member, Role::Support, false));
        assert!(!may_be_granted(Role::Support, Role::Support, true));
        assert!(!may_be_granted(Role::Member, Role::Member, true));
        assert!(may_be_granted(Role::Editor, Role::SuperUser, true));
    }
}
