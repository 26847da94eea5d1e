//! Who may log in on behalf of whom: one pure function, no I/O. The UI calls it to
//! show or hide actions; the server calls it to refuse them, at the start of an
//! on-behalf session and again on every request of one.
//!
//! The fourth condition of the rule (the actor has just re-entered their password)
//! is not a fact about members and is checked where the password is: in the start
//! of an on-behalf session, every time.

use serde::{Deserialize, Serialize};

use crate::{mode::Mode, role::Role};

/// The person who wants to act on someone's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: i64,
    pub role: Role,
    /// May use the management screens: the role grant needs it (an explicit grant
    /// does not, as Kuroco's `alias_login` for frontends shows).
    pub admin_access: bool,
    /// True when this request already runs in an on-behalf session (no nesting).
    pub on_behalf: bool,
}

/// The member whose account the actor wants to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: i64,
    pub role: Role,
    pub deleted: bool,
    /// "Authorized to log in".
    pub login_enabled: bool,
    /// The actor's ID is in this member's proxy login permission.
    pub grants_actor: bool,
    /// That entry was written by the actor themselves (no self-grant to a peer).
    pub grant_written_by_actor: bool,
    /// The member asks first (Step 12): their setting is `ask`, or the server's
    /// `--consent required` makes it everyone's. A role grant alone is not enough.
    pub asks_first: bool,
    /// The broadest live member grant covering the actor (to them by name, or to any
    /// support engineer): the member's consent, for that mode.
    pub member_grant: Option<Mode>,
}

/// Why the rule holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grant {
    /// Support or above, and the target ranks strictly lower.
    Role,
    /// The target's proxy login permission names the actor, and the target ranks no
    /// higher than the actor.
    Explicit,
    /// A role grant the member consented to with a live member grant (they ask
    /// first): capped at the grant's mode.
    Member(Mode),
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Role => "role",
            Grant::Explicit => "explicit",
            Grant::Member(_) => "member",
        }
    }

    /// The furthest a session on behalf allowed by this grant may go: a member
    /// grant's mode, else acting.
    pub fn mode_cap(self) -> Mode {
        match self {
            Grant::Member(mode) => mode,
            Grant::Role | Grant::Explicit => Mode::Act,
        }
    }
}

/// May an actor act (not only view) on behalf, given why the rule lets them in?
/// An explicit grant always may; a member grant as far as its mode; a role grant (and
/// a member grant to act) when the actor's role is at least `act_min_role` (the
/// `--act-min-role` setting; `None`: anyone the rule lets in).
pub fn may_act(actor_role: Role, grant: Grant, act_min_role: Option<Role>) -> bool {
    match grant {
        Grant::Explicit => true,
        Grant::Member(Mode::View) => false,
        Grant::Role | Grant::Member(Mode::Act) => act_min_role.is_none_or(|min| actor_role >= min),
    }
}

/// Why the rule does not hold: a stable code and a sentence for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Denial {
    /// The actor is already acting on someone's behalf.
    Nested,
    /// The actor and the target are the same member.
    SelfTarget,
    /// No such member.
    NotFound,
    Deleted,
    /// The target is not authorized to log in.
    LoginDisabled,
    /// The actor's proxy login permission for the target is not enough: the target
    /// ranks higher than the actor.
    ExplicitGrantToHigherRank,
    /// The target's proxy login permission names the actor at equal rank, but the
    /// actor wrote that entry themselves: only someone else may grant access to a peer.
    SelfWrittenGrant,
    /// The actor's role would do, but they have no admin access.
    RoleGrantNeedsAdminAccess,
    /// The actor's role would do, but the target ranks as high as the actor or higher.
    RankNotLower,
    /// Neither the actor's role nor the target's proxy login permission allows it.
    NoPermission,
    /// The actor's role would do, but the member asks first: a live member grant (an
    /// approved access request) or an explicit proxy login permission is needed.
    ConsentRequired,
}

impl Denial {
    pub const ALL: [Denial; 11] = [
        Denial::Nested,
        Denial::SelfTarget,
        Denial::NotFound,
        Denial::Deleted,
        Denial::LoginDisabled,
        Denial::ExplicitGrantToHigherRank,
        Denial::SelfWrittenGrant,
        Denial::RoleGrantNeedsAdminAccess,
        Denial::RankNotLower,
        Denial::NoPermission,
        Denial::ConsentRequired,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Denial::Nested => "nested",
            Denial::SelfTarget => "self",
            Denial::NotFound => "target_not_found",
            Denial::Deleted => "target_deleted",
            Denial::LoginDisabled => "target_not_authorized_to_log_in",
            Denial::ExplicitGrantToHigherRank => "explicit_grant_to_higher_rank",
            Denial::SelfWrittenGrant => "self_written_grant",
            Denial::RoleGrantNeedsAdminAccess => "role_grant_needs_admin_access",
            Denial::RankNotLower => "rank_not_lower",
            Denial::NoPermission => "no_permission",
            Denial::ConsentRequired => "consent_required",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Denial::Nested => {
                "You are already acting on someone's behalf. Leave that first; sessions on behalf cannot be nested."
            }
            Denial::SelfTarget => "You cannot log in on your own behalf.",
            Denial::NotFound => "There is no such member.",
            Denial::Deleted => "This member has been deleted.",
            Denial::LoginDisabled => "This member is not authorized to log in, so nobody can log in on their behalf.",
            Denial::ExplicitGrantToHigherRank => {
                "This member's proxy login permission names you, but their role ranks above yours."
            }
            Denial::SelfWrittenGrant => {
                "This member's proxy login permission names you, but you wrote that entry yourself and their role equals yours: someone else must grant it."
            }
            Denial::RoleGrantNeedsAdminAccess => {
                "Your role would allow this, but you do not have access to the management screens."
            }
            Denial::RankNotLower => {
                "You can log in on behalf of members whose role ranks below yours only."
            }
            Denial::NoPermission => {
                "You are not allowed to log in on behalf of this member: your role does not allow it and their proxy login permission does not name you."
            }
            Denial::ConsentRequired => {
                "This member asks to be asked first: request access and wait for their approval."
            }
        }
    }
}

impl Denial {
    pub fn parse(code: &str) -> Option<Denial> {
        Denial::ALL.into_iter().find(|d| d.code() == code)
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// The rule of ../shared/DESIGN.md, conditions 1–3 (see the module's note on 4).
/// `target` is `None` when no such member exists.
pub fn can_log_in_on_behalf(actor: &Actor, target: Option<&Target>) -> Result<Grant, Denial> {
    if actor.on_behalf {
        return Err(Denial::Nested);
    }
    let Some(target) = target else {
        return Err(Denial::NotFound);
    };
    if target.id == actor.id {
        return Err(Denial::SelfTarget);
    }
    if target.deleted {
        return Err(Denial::Deleted);
    }
    if !target.login_enabled {
        return Err(Denial::LoginDisabled);
    }
    let (actor_rank, target_rank) = (actor.role.rank(), target.role.rank());
    let role_would_do = actor.role >= Role::Support && target_rank < actor_rank;
    let role_grant = role_would_do && actor.admin_access;
    if role_grant && !target.asks_first {
        return Ok(Grant::Role);
    }
    let explicit = if target.grants_actor {
        if target_rank > actor_rank {
            Err(Denial::ExplicitGrantToHigherRank)
        } else if target.asks_first && target.grant_written_by_actor {
            // A member who asks first: an entry the actor wrote themselves (an editor's
            // own power) is not the member's consent, at any rank.
            Err(Denial::SelfWrittenGrant)
        } else if target_rank == actor_rank && target.grant_written_by_actor {
            Err(Denial::SelfWrittenGrant)
        } else {
            Ok(Grant::Explicit)
        }
    } else {
        Err(Denial::NoPermission)
    };
    // The member asks first: their consent (a member grant) makes the role grant
    // hold, capped at its mode; an explicit grant needs none. A member grant never
    // lets in anyone the role grant would not.
    if role_grant {
        return match (explicit, target.member_grant) {
            (Ok(grant), _) => Ok(grant),
            (Err(_), Some(mode)) => Ok(Grant::Member(mode)),
            (Err(_), None) => Err(Denial::ConsentRequired),
        };
    }
    if target.grants_actor {
        return explicit;
    }
    if role_would_do {
        Err(Denial::RoleGrantNeedsAdminAccess)
    } else if actor.role >= Role::Support {
        Err(Denial::RankNotLower)
    } else {
        Err(Denial::NoPermission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the rule must answer, written independently of its code: each condition
    /// of the design in turn.
    fn expected(actor: &Actor, target: Option<&Target>) -> Result<Grant, Denial> {
        let checks: [(bool, Denial); 3] = [
            (actor.on_behalf, Denial::Nested),
            (target.is_none(), Denial::NotFound),
            (target.is_some_and(|t| t.id == actor.id), Denial::SelfTarget),
        ];
        if let Some((_, denial)) = checks.into_iter().find(|(fails, _)| *fails) {
            return Err(denial);
        }
        let target = target.unwrap();
        if target.deleted {
            return Err(Denial::Deleted);
        }
        if !target.login_enabled {
            return Err(Denial::LoginDisabled);
        }
        let staff = matches!(actor.role, Role::Support | Role::Editor | Role::SuperUser);
        let (a, t) = (actor.role.rank(), target.role.rank());
        let role_grant = staff && actor.admin_access && t < a;
        // Asking first, an entry the actor wrote themselves never counts.
        let peer_self_grant = (t == a || target.asks_first) && target.grant_written_by_actor;
        let explicit = target.grants_actor && t <= a && !peer_self_grant;
        // Step 12: asking first turns a role grant into "with the member's consent".
        if role_grant && !target.asks_first {
            return Ok(Grant::Role);
        }
        if explicit {
            return Ok(Grant::Explicit);
        }
        if role_grant {
            return target
                .member_grant
                .map(Grant::Member)
                .ok_or(Denial::ConsentRequired);
        }
        match (target.grants_actor, t > a, staff && t < a, actor.role) {
            (true, true, _, _) => Err(Denial::ExplicitGrantToHigherRank),
            (true, false, _, _) => Err(Denial::SelfWrittenGrant),
            (false, _, true, _) => Err(Denial::RoleGrantNeedsAdminAccess),
            (false, _, false, Role::Member) => Err(Denial::NoPermission),
            (false, _, false, _) => Err(Denial::RankNotLower),
        }
    }

    #[test]
    fn the_rule_over_every_combination() {
        let mut checked = 0;
        let mut seen = std::collections::BTreeSet::new();
        for actor_role in Role::ALL {
            for target_role in Role::ALL {
                for (grants_actor, written_by_actor) in [(false, false), (true, false), (true, true)] {
                    for admin_access in [false, true] {
                        for deleted in [false, true] {
                            for login_enabled in [false, true] {
                                for on_behalf in [false, true] {
                                    for same_member in [false, true] {
                                        for exists in [false, true] {
                                            for asks_first in [false, true] {
                                                for member_grant in [None, Some(Mode::View), Some(Mode::Act)]
                                                {
                                                    let actor = Actor {
                                                        id: 1,
                                                        role: actor_role,
                                                        admin_access,
                                                        on_behalf,
                                                    };
                                                    let target = Target {
                                                        id: if same_member { 1 } else { 2 },
                                                        role: target_role,
                                                        deleted,
                                                        login_enabled,
                                                        grants_actor,
                                                        grant_written_by_actor: written_by_actor,
                                                        asks_first,
                                                        member_grant,
                                                    };
                                                    let target = exists.then_some(&target);
                                                    let answer = can_log_in_on_behalf(&actor, target);
                                                    assert_eq!(
                                                        answer,
                                                        expected(&actor, target),
                                                        "{actor:?} → {target:?}"
                                                    );
                                                    seen.insert(format!("{answer:?}"));
                                                    checked += 1;
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 4 * 3 * 2 * 2 * 2 * 2 * 2 * 2 * 2 * 3);
        // Every outcome is reachable: every grant (a member grant in both modes) and
        // every denial.
        assert_eq!(seen.len(), 4 + Denial::ALL.len(), "{seen:?}");
    }

    /// The cases people ask about, spelled out.
    #[test]
    fn the_rule_in_plain_cases() {
        let actor = |role| Actor {
            id: 1,
            role,
            admin_access: true,
            on_behalf: false,
        };
        let target = |role, grants_actor| Target {
            id: 2,
            role,
            deleted: false,
            login_enabled: true,
            grants_actor,
            grant_written_by_actor: false,
            asks_first: false,
            member_grant: None,
        };
        let rule = |a: Role, t: Role, g: bool| can_log_in_on_behalf(&actor(a), Some(&target(t, g)));
        assert_eq!(rule(Role::Support, Role::Member, false), Ok(Grant::Role));
        assert_eq!(
            rule(Role::Support, Role::Support, false),
            Err(Denial::RankNotLower)
        );
        assert_eq!(
            rule(Role::Editor, Role::SuperUser, false),
            Err(Denial::RankNotLower)
        );
        assert_eq!(rule(Role::SuperUser, Role::Editor, false), Ok(Grant::Role));
        // An explicit grant reaches equals, never higher ranks.
        assert_eq!(rule(Role::Support, Role::Support, true), Ok(Grant::Explicit));
        assert_eq!(rule(Role::Member, Role::Member, true), Ok(Grant::Explicit));
        assert_eq!(
            rule(Role::Member, Role::Support, true),
            Err(Denial::ExplicitGrantToHigherRank)
        );
        assert_eq!(rule(Role::Member, Role::Member, false), Err(Denial::NoPermission));
        // A role grant wins over an explicit one when both hold.
        assert_eq!(rule(Role::Editor, Role::Member, true), Ok(Grant::Role));
        // The role grant needs admin access; an explicit grant does not.
        let no_admin = Actor {
            admin_access: false,
            ..actor(Role::Support)
        };
        assert_eq!(
            can_log_in_on_behalf(&no_admin, Some(&target(Role::Member, false))),
            Err(Denial::RoleGrantNeedsAdminAccess)
        );
        assert_eq!(
            can_log_in_on_behalf(&no_admin, Some(&target(Role::Member, true))),
            Ok(Grant::Explicit)
        );
        // A peer's permission naming the actor counts only if someone else wrote it;
        // at a lower rank, who wrote it does not matter (Kuroco's own example).
        let self_written = |role| Target {
            grant_written_by_actor: true,
            ..target(role, true)
        };
        assert_eq!(
            can_log_in_on_behalf(&actor(Role::Editor), Some(&self_written(Role::Editor))),
            Err(Denial::SelfWrittenGrant)
        );
        assert_eq!(
            can_log_in_on_behalf(&no_admin, Some(&self_written(Role::Member))),
            Ok(Grant::Explicit)
        );
    }

    /// Step 12: a member who asks first.
    #[test]
    fn a_member_who_asks_first_needs_a_grant_which_never_overcomes_the_rest() {
        let support = Actor {
            id: 1,
            role: Role::Support,
            admin_access: true,
            on_behalf: false,
        };
        let member = Target {
            id: 2,
            role: Role::Member,
            deleted: false,
            login_enabled: true,
            grants_actor: false,
            grant_written_by_actor: false,
            asks_first: true,
            member_grant: None,
        };
        let rule = |actor: &Actor, target: &Target| can_log_in_on_behalf(actor, Some(target));
        assert_eq!(rule(&support, &member), Err(Denial::ConsentRequired));
        let view = Target {
            member_grant: Some(Mode::View),
            ..member
        };
        assert_eq!(rule(&support, &view), Ok(Grant::Member(Mode::View)));
        assert_eq!(Grant::Member(Mode::View).mode_cap(), Mode::View);
        // An explicit permission someone else wrote needs no consent; one the actor
        // wrote themselves (an editor's own power) is not the member's consent.
        let named = Target {
            grants_actor: true,
            ..member
        };
        assert_eq!(rule(&support, &named), Ok(Grant::Explicit));
        let self_named = Target {
            grant_written_by_actor: true,
            ..named
        };
        assert_eq!(rule(&support, &self_named), Err(Denial::ConsentRequired));
        // Not rank, nesting, a disabled login or missing admin access.
        let peer = Target {
            role: Role::Support,
            ..view
        };
        assert_eq!(rule(&support, &peer), Err(Denial::RankNotLower));
        let nested = Actor {
            on_behalf: true,
            ..support
        };
        assert_eq!(rule(&nested, &view), Err(Denial::Nested));
        let disabled = Target {
            login_enabled: false,
            ..view
        };
        assert_eq!(rule(&support, &disabled), Err(Denial::LoginDisabled));
        let no_admin = Actor {
            admin_access: false,
            ..support
        };
        assert_eq!(rule(&no_admin, &view), Err(Denial::RoleGrantNeedsAdminAccess));
        let plain_member = Actor {
            role: Role::Member,
            ..support
        };
        assert_eq!(rule(&plain_member, &view), Err(Denial::NoPermission));
        // Not asking: the role grant, as before.
        let allowed = Target {
            asks_first: false,
            ..view
        };
        assert_eq!(rule(&support, &allowed), Ok(Grant::Role));
    }

    #[test]
    fn acting_needs_the_act_min_role_for_role_grants_and_an_act_grant_for_member_grants() {
        assert!(may_act(Role::Support, Grant::Role, None));
        assert!(!may_act(Role::Support, Grant::Role, Some(Role::Editor)));
        assert!(may_act(Role::Editor, Grant::Role, Some(Role::Editor)));
        assert!(may_act(Role::SuperUser, Grant::Role, Some(Role::Editor)));
        assert!(!may_act(Role::Editor, Grant::Role, Some(Role::SuperUser)));
        // An explicit grant names the actor: the setting does not narrow it.
        assert!(may_act(Role::Member, Grant::Explicit, Some(Role::SuperUser)));
        // A member grant caps the session at its mode.
        assert!(!may_act(Role::SuperUser, Grant::Member(Mode::View), None));
        assert!(may_act(Role::Support, Grant::Member(Mode::Act), None));
        assert!(!may_act(
            Role::Support,
            Grant::Member(Mode::Act),
            Some(Role::Editor)
        ));
    }

    #[test]
    fn denial_codes_are_distinct_and_every_denial_has_a_sentence() {
        let codes: std::collections::BTreeSet<_> = Denial::ALL.iter().map(|d| d.code()).collect();
        assert_eq!(codes.len(), Denial::ALL.len());
        for denial in Denial::ALL {
            assert!(denial.message().ends_with('.'), "{denial:?}");
        }
    }
}
