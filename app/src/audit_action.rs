//! What an audit record says happened, and to what kind of thing (lower layer: imports
//! nothing of the app). Built for the server and the browser: the writers record an
//! `AuditAction`, and the audit viewer's filter, its parsing, the CSV export and the
//! API's list of actions all come from `AuditAction::ALL`, so an action that can be
//! written can always be filtered. The names are the stored `action` and `object_type`
//! values (and part of each record's hash): never rename one.

use serde::{Deserialize, Serialize};

/// Declares an enum with one stored name per variant from one table, so the enum,
/// `ALL`, `as_str` and `parse` cannot disagree.
macro_rules! wire_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$doc])* $variant,)*
        }

        impl $name {
            /// Every variant, in the order lists show them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// The variant stored as `text`, if there is one.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_names! {
    /// What an audit record says happened (its `action`).
    AuditAction {
        /// A member signed in as themselves.
        SignIn = "sign_in",
        /// A wrong email or password.
        SignInFailed = "sign_in_failed",
        /// Too many failed sign-ins: the account is locked for a while.
        SignInLocked = "sign_in_locked",
        /// The right password, but the member may not sign in.
        SignInRefused = "sign_in_refused",
        SignOut = "sign_out",
        /// A member's own session ended without a more telling action (expired, revoked,
        /// replaced).
        SessionEnded = "session_ended",
        /// A member ended one of their own sessions.
        SessionRevoked = "session_revoked",
        SessionRevokeRefused = "session_revoke_refused",
        PasswordChanged = "password_changed",
        /// The current password given was wrong.
        PasswordChangeFailed = "password_change_failed",
        PasswordChangeRefused = "password_change_refused",
        ProfileUpdated = "profile_updated",
        OnBehalfStart = "on_behalf_start",
        OnBehalfEnd = "on_behalf_end",
        /// The rule refused a session on behalf.
        OnBehalfDenied = "on_behalf_denied",
        /// The actor's password, re-entered to start a session on behalf, was wrong.
        OnBehalfReauthFailed = "on_behalf_reauth_failed",
        /// A view-only session on behalf was elevated to act (with a password and a reason).
        OnBehalfElevated = "on_behalf_elevated",
        /// A session on behalf was refused a protected action, or a change while view
        /// only (folded like every refusal).
        OnBehalfRefused = "on_behalf_refused",
        /// Pages and API reads in a session on behalf (the view trail; repeats of one
        /// path within a minute folded into one record with a count).
        OnBehalfViewed = "on_behalf_viewed",
        /// Written by the command line (`create-member`, `init-admin`).
        MemberCreated = "member_created",
        /// Written by the command line (`seed`), once for the whole run.
        MembersSeeded = "members_seeded",
        MemberUpdated = "member_updated",
        MemberUpdateRefused = "member_update_refused",
        GroupCreated = "group_created",
        GroupRenamed = "group_renamed",
        GroupDeleted = "group_deleted",
        GroupMemberAdded = "group_member_added",
        GroupMemberRemoved = "group_member_removed",
        GroupChangeRefused = "group_change_refused",
        OrderPlaced = "order_placed",
        OneClickCreated = "one_click_created",
        OneClickCreateRefused = "one_click_create_refused",
        OneClickRevoked = "one_click_revoked",
        OneClickRevokeRefused = "one_click_revoke_refused",
        /// A link's confirm page was opened (a `GET`, which never consumes it).
        OneClickOpened = "one_click_opened",
        OneClickUsed = "one_click_used",
        OneClickFailed = "one_click_failed",
        /// The list of sessions on behalf was refused.
        ImpersonationsRefused = "impersonations_refused",
        /// An overseer ended someone's session on behalf.
        ImpersonationEnded = "impersonation_ended",
        ImpersonationEndRefused = "impersonation_end_refused",
        /// A super user ended every live session on behalf.
        ImpersonationsEndedAll = "impersonations_ended_all",
        ImpersonationEndAllRefused = "impersonation_end_all_refused",
        /// The list of a member's sessions was refused.
        MemberSessionsRefused = "member_sessions_refused",
        /// An overseer ended one or all of a member's sessions.
        MemberSessionsRevoked = "member_sessions_revoked",
        MemberSessionsRevokeRefused = "member_sessions_revoke_refused",
        AuditExported = "audit_exported",
        /// Step 12: the member's setting (`allowed` or `ask`) changed.
        ConsentSettingChanged = "consent_setting_changed",
        /// Someone asked the member for access.
        AccessRequested = "access_requested",
        AccessRequestApproved = "access_request_approved",
        AccessRequestDenied = "access_request_denied",
        /// Unanswered for a day.
        AccessRequestExpired = "access_request_expired",
        /// A member grant (the member's own, or an approved request's).
        GrantCreated = "grant_created",
        GrantRevoked = "grant_revoked",
        GrantExpired = "grant_expired",
        /// The member ended a session on their behalf (**End it now**).
        OnBehalfEndedByMember = "on_behalf_ended_by_member",
        /// A notice was mailed to the member, or could not be (after its retries).
        MailSent = "mail_sent",
        MailFailed = "mail_failed",
    }
}

wire_names! {
    /// The kind of thing an audit record is about (its `object_type`).
    ObjectKind {
        Session = "session",
        /// Sessions as a whole (the object ID says which: `on_behalf`).
        Sessions = "sessions",
        Member = "member",
        Group = "group",
        Order = "order",
        OneClickLink = "one_click_link",
        AccessRequest = "access_request",
        MemberGrant = "member_grant",
        Notice = "notice",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_snake_case(name: &str) -> bool {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && !name.starts_with('_')
            && !name.ends_with('_')
            && !name.contains("__")
    }

    #[test]
    fn every_action_has_one_snake_case_name_that_parses_back() {
        let names: HashSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len(), "two actions share a name");
        for &action in AuditAction::ALL {
            let name = action.as_str();
            assert!(is_snake_case(name), "{name}");
            assert!(name.len() <= 64, "{name}");
            assert_eq!(AuditAction::parse(name), Some(action));
            assert_eq!(action.to_string(), name);
            // The wire name is the stored name.
            assert_eq!(serde_json::to_value(action).unwrap(), serde_json::json!(name));
            assert_eq!(
                serde_json::from_value::<AuditAction>(name.into()).unwrap(),
                action
            );
        }
        for unknown in ["", "Sign_in", "sign_in ", "drop table", "bench_filler"] {
            assert_eq!(AuditAction::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn the_names_already_stored_keep_their_spelling() {
        // Records in existing databases (and their hashes) carry these names: the list
        // is written out again here, so renaming or dropping one fails.
        let stored = "sign_in sign_in_failed sign_in_locked sign_in_refused sign_out \
            session_ended session_revoked session_revoke_refused password_changed \
            password_change_failed password_change_refused profile_updated on_behalf_start \
            on_behalf_end on_behalf_denied on_behalf_reauth_failed on_behalf_elevated \
            on_behalf_refused on_behalf_viewed member_created \
            members_seeded member_updated member_update_refused group_created group_renamed \
            group_deleted group_member_added group_member_removed group_change_refused \
            order_placed one_click_created one_click_create_refused one_click_revoked \
            one_click_revoke_refused one_click_opened one_click_used one_click_failed \
            impersonations_refused impersonation_ended impersonation_end_refused \
            impersonations_ended_all impersonation_end_all_refused member_sessions_refused \
            member_sessions_revoked member_sessions_revoke_refused audit_exported \
            consent_setting_changed access_requested access_request_approved access_request_denied \
            access_request_expired grant_created grant_revoked grant_expired on_behalf_ended_by_member \
            mail_sent mail_failed";
        let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, stored.split_whitespace().collect::<Vec<_>>());
        let kinds: Vec<&str> = ObjectKind::ALL.iter().map(|k| k.as_str()).collect();
        let stored_kinds =
            "session sessions member group order one_click_link access_request member_grant notice";
        assert_eq!(kinds, stored_kinds.split_whitespace().collect::<Vec<_>>());
    }

    #[test]
    fn every_object_kind_has_one_snake_case_name_that_parses_back() {
        let names: HashSet<&str> = ObjectKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ObjectKind::ALL.len());
        for &kind in ObjectKind::ALL {
            assert!(is_snake_case(kind.as_str()), "{kind}");
            assert_eq!(ObjectKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(ObjectKind::parse("members"), None);
    }
}
