//! Who may do what, beside the impersonation rule (`rule.rs`): pure predicates over
//! plain types, no I/O. The UI calls them to show or hide actions; the services call
//! them (through `guard`) to refuse. Neither decides alone: the server always checks.

use crate::{error::Refusal, role::Role};

/// May use the management screens at all.
pub fn may_use_admin(admin_access: bool) -> Result<(), Refusal> {
    if admin_access {
        Ok(())
    } else {
        Err(Refusal::NoAdminAccess)
    }
}

/// May change members and groups: editors and super users with admin access.
pub fn may_manage(role: Role, admin_access: bool) -> Result<(), Refusal> {
    may_use_admin(admin_access)?;
    if role < Role::Editor {
        return Err(Refusal::NeedsEditorRole);
    }
    Ok(())
}

/// May read the audit trail: editors and super users with admin access.
pub fn may_audit(role: Role, admin_access: bool) -> Result<(), Refusal> {
    may_use_admin(admin_access)?;
    if role < Role::Editor {
        return Err(Refusal::NotAuditor);
    }
    Ok(())
}

/// Who may edit members: editors and super users, and only members whose rank is
/// at most their own. (Admin access is checked separately.)
pub fn may_edit(editor: Role, target: Role) -> bool {
    editor >= Role::Editor && target.rank() <= editor.rank()
}

/// The roles `editor` may give: none above their own.
pub fn assignable_roles(editor: Role) -> Vec<Role> {
    if editor < Role::Editor {
        return Vec::new();
    }
    Role::ALL
        .into_iter()
        .filter(|role| role.rank() <= editor.rank())
        .collect()
}

/// May `editor` change the role of a member from `before` to `after`? Not above their
/// own rank; and a peer's role only a higher rank may change (an editor who could
/// demote a peer editor could then log in on their behalf by the role grant). Super
/// users, the highest rank, may change one another's.
pub fn may_change_role(editor: Role, before: Role, after: Role) -> Result<(), Refusal> {
    if after.rank() > editor.rank() {
        return Err(Refusal::RoleAboveOwnRank);
    }
    if before != after && before.rank() == editor.rank() && editor != Role::SuperUser {
        return Err(Refusal::PeerRoleChange);
    }
    Ok(())
}

/// May `editor` (member `editor_id`) write `actor_id` into the proxy login permission
/// of a member of rank `target`? Anyone the editor may edit, except themselves into a
/// peer's: at equal rank only someone else may grant access (Kuroco's own example, an
/// admin adding themselves to a lower-ranked member's permission, stays allowed).
pub fn may_grant(editor_id: i64, editor: Role, target: Role, actor_id: i64) -> Result<(), Refusal> {
    if !may_edit(editor, target) {
        return Err(Refusal::TargetOutranksEditor);
    }
    if actor_id == editor_id && target.rank() == editor.rank() {
        return Err(Refusal::SelfGrantToPeer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_and_audit_need_admin_access_and_editor_rank() {
        for role in Role::ALL {
            for admin in [false, true] {
                let expected = match (admin, role >= Role::Editor) {
                    (false, _) => Err(Refusal::NoAdminAccess),
                    (true, false) => Err(Refusal::NeedsEditorRole),
                    (true, true) => Ok(()),
                };
                assert_eq!(may_manage(role, admin), expected, "{role:?} {admin}");
                let audit = expected.map_err(|e| match e {
                    Refusal::NeedsEditorRole => Refusal::NotAuditor,
                    other => other,
                });
                assert_eq!(may_audit(role, admin), audit, "{role:?} {admin}");
            }
        }
    }

    #[test]
    fn editors_edit_up_to_their_rank_and_give_no_higher_role() {
        assert!(may_edit(Role::Editor, Role::Editor));
        assert!(!may_edit(Role::Editor, Role::SuperUser));
        assert!(!may_edit(Role::Support, Role::Member));
        assert_eq!(
            assignable_roles(Role::Editor),
            vec![Role::Member, Role::Support, Role::Editor]
        );
        assert!(assignable_roles(Role::Support).is_empty());
    }

    #[test]
    fn only_a_higher_rank_changes_a_peers_role() {
        use Role::*;
        assert_eq!(
            may_change_role(Editor, Editor, Support),
            Err(Refusal::PeerRoleChange)
        );
        assert_eq!(may_change_role(Editor, Editor, Editor), Ok(()));
        assert_eq!(may_change_role(Editor, Support, Editor), Ok(()));
        assert_eq!(
            may_change_role(Editor, Member, SuperUser),
            Err(Refusal::RoleAboveOwnRank)
        );
        assert_eq!(may_change_role(SuperUser, SuperUser, Editor), Ok(()));
    }

    #[test]
    fn nobody_grants_themselves_access_to_a_peer() {
        let (me, other) = (1, 2);
        for editor in [Role::Editor, Role::SuperUser] {
            for target in Role::ALL {
                let outranks = target.rank() > editor.rank();
                let peer = target.rank() == editor.rank();
                let expected = if outranks {
                    Err(Refusal::TargetOutranksEditor)
                } else if peer {
                    Err(Refusal::SelfGrantToPeer)
                } else {
                    Ok(())
                };
                assert_eq!(
                    may_grant(me, editor, target, me),
                    expected,
                    "{editor:?} → {target:?}"
                );
                // Someone else may be named, up to the editor's own rank.
                let other_expected = if outranks {
                    Err(Refusal::TargetOutranksEditor)
                } else {
                    Ok(())
                };
                assert_eq!(may_grant(me, editor, target, other), other_expected);
            }
        }
    }
}
