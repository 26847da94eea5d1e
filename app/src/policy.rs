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

/// What a one-click link's creator and member are, for `may_create_link`.
#[derive(Clone, Copy, Debug)]
pub struct LinkParty {
    pub role: Role,
    pub admin_access: bool,
}

/// May `creator` see and revoke the one-click links of `member`? Support engineers
/// and above with admin access, for members of strictly lower rank; a member with
/// admin access only for a super user.
pub fn may_manage_links(creator: LinkParty, member: LinkParty) -> Result<(), Refusal> {
    may_use_admin(creator.admin_access)?;
    if creator.role < Role::Support {
        return Err(Refusal::NeedsSupportRole);
    }
    if member.role.rank() >= creator.role.rank() {
        return Err(Refusal::LinkTargetNotLower);
    }
    if member.admin_access && creator.role != Role::SuperUser {
        return Err(Refusal::LinkTargetHasAdminAccess);
    }
    Ok(())
}

/// May `creator` create a one-click login link for `member`? As `may_manage_links`,
/// and never for a member not authorized to log in.
pub fn may_create_link(
    creator: LinkParty,
    member: LinkParty,
    member_login_enabled: bool,
) -> Result<(), Refusal> {
    may_manage_links(creator, member)?;
    if !member_login_enabled {
        return Err(Refusal::LoginDisabled);
    }
    Ok(())
}

/// May see the live sessions on behalf and members' sessions (and end them): editors
/// and super users with admin access, in their own session (not on someone's behalf).
pub fn may_oversee(role: Role, admin_access: bool, on_behalf: bool) -> Result<(), Refusal> {
    may_use_admin(admin_access)?;
    if role < Role::Editor {
        return Err(Refusal::NotOverseer);
    }
    if on_behalf {
        return Err(Refusal::OnBehalfProtected);
    }
    Ok(())
}

/// May an overseer of role `viewer` end a session whose actor (or, for a member's own
/// session, whose member) has role `holder`? Not one above their own rank.
pub fn may_end_session(viewer: Role, holder: Role) -> Result<(), Refusal> {
    if holder.rank() > viewer.rank() {
        return Err(Refusal::SessionOutranksViewer);
    }
    Ok(())
}

/// May end every live session on behalf at once: super users only.
pub fn may_end_all(viewer: Role) -> Result<(), Refusal> {
    if viewer != Role::SuperUser {
        return Err(Refusal::NeedsSuperUser);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overseers_are_editors_and_super_users_in_their_own_session() {
        assert!(may_oversee(Role::Editor, true, false).is_ok());
        assert!(may_oversee(Role::SuperUser, true, false).is_ok());
        assert_eq!(may_oversee(Role::Support, true, false), Err(Refusal::NotOverseer));
        assert_eq!(
            may_oversee(Role::SuperUser, false, false),
            Err(Refusal::NoAdminAccess)
        );
        assert_eq!(
            may_oversee(Role::SuperUser, true, true),
            Err(Refusal::OnBehalfProtected)
        );
        assert!(may_end_session(Role::Editor, Role::Support).is_ok());
        assert!(may_end_session(Role::Editor, Role::Editor).is_ok());
        assert_eq!(
            may_end_session(Role::Editor, Role::SuperUser),
            Err(Refusal::SessionOutranksViewer)
        );
        assert!(may_end_all(Role::SuperUser).is_ok());
        assert_eq!(may_end_all(Role::Editor), Err(Refusal::NeedsSuperUser));
    }

    #[test]
    fn one_click_links_follow_rank_admin_access_and_login() {
        use Role::*;
        let party = |role, admin_access| LinkParty { role, admin_access };
        // Every creator against every plain target rank (admin access off, login on).
        let table = [
            (Member, Member, Err(Refusal::NeedsSupportRole)),
            (Support, Member, Ok(())),
            (Support, Support, Err(Refusal::LinkTargetNotLower)),
            (Editor, Member, Ok(())),
            (Editor, Support, Ok(())),
            (Editor, Editor, Err(Refusal::LinkTargetNotLower)),
            (Editor, SuperUser, Err(Refusal::LinkTargetNotLower)),
            (SuperUser, Editor, Ok(())),
            (SuperUser, SuperUser, Err(Refusal::LinkTargetNotLower)),
        ];
        for (creator, target, expected) in table {
            assert_eq!(
                may_create_link(party(creator, true), party(target, false), true),
                expected,
                "{creator:?} → {target:?}"
            );
        }
        // Admin access on the target: only a super user.
        assert_eq!(
            may_create_link(party(Editor, true), party(Support, true), true),
            Err(Refusal::LinkTargetHasAdminAccess)
        );
        assert_eq!(
            may_create_link(party(SuperUser, true), party(Support, true), true),
            Ok(())
        );
        // The creator needs admin access; the target must be allowed to log in.
        assert_eq!(
            may_create_link(party(SuperUser, false), party(Member, false), true),
            Err(Refusal::NoAdminAccess)
        );
        assert_eq!(
            may_create_link(party(SuperUser, true), party(Member, false), false),
            Err(Refusal::LoginDisabled)
        );
        // Revoking does not ask for the login permission (its links are gone anyway).
        assert_eq!(
            may_manage_links(party(Support, true), party(Member, false)),
            Ok(())
        );
    }

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
