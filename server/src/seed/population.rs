//! The seeded population: who the members are, which groups they belong to, and
//! whose proxy login permission names whom. Pure functions of the seed.

use app::role::Role;
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::names::{FIRST_NAMES, LAST_NAMES};

/// The seeded groups (companies and teams a member can belong to).
pub const GROUPS: &[&str] = &[
    "Acme Retail",
    "Northwind Traders",
    "Contoso Pharmacy",
    "Globex Logistics",
    "Initech Software",
    "Umbrella Garden Centres",
    "Wayne Hardware",
    "Stark Electronics",
    "Tyrell Books",
    "Hooli Cloud",
    "Pied Piper Studio",
    "Wonka Confectionery",
];

/// Which seeded groups member `index` belongs to: none, one or two of them.
pub fn groups_of(seed: u64, index: u64) -> Vec<usize> {
    // splitmix64: a cheap, well-mixed hash, so memberships need no RNG state.
    let mut z = (index ^ seed.rotate_left(32)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let n = GROUPS.len() as u64;
    let first = ((z >> 8) % n) as usize;
    let second = ((z >> 24) % n) as usize;
    match z % 4 {
        0 => vec![],
        3 if second != first => vec![first, second],
        _ => vec![first],
    }
}

/// 2024-01-01T00:00:00Z: seeded times are spread over the years after it, so they
/// do not depend on when the seed ran.
pub(super) const EPOCH_2024: i64 = 1_704_067_200_000;
const YEAR: i64 = 365 * 24 * 3_600_000;

#[derive(Debug, Clone, PartialEq)]
pub struct SeedMember {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub admin_access: bool,
    pub login_enabled: bool,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

/// The `index`-th member of the seed `seed`'s population (0-based). The first few
/// members cover every role, so a new user sees each.
pub fn member(rng: &mut StdRng, seed: u64, index: u64) -> SeedMember {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    let role = match index {
        0 => Role::SuperUser,
        1 | 2 => Role::Editor,
        3..=6 => Role::Support,
        _ => match rng.random_range(0..1000) {
            0 => Role::SuperUser,
            1..=4 => Role::Editor,
            5..=24 => Role::Support,
            _ => Role::Member,
        },
    };
    let login_enabled = index < 10 || rng.random_range(0..100) >= 3;
    let created_at = EPOCH_2024 + rng.random_range(0..2 * YEAR);
    let last_sign_in_at = rng
        .random_bool(0.8)
        .then(|| created_at + rng.random_range(0..YEAR / 2));
    let local = format!("{}.{}", ascii_lower(first), ascii_lower(last));
    let email = if seed == 1 {
        format!("{local}{}@example.com", index + 1)
    } else {
        format!("{local}{}.s{seed}@example.com", index + 1)
    };
    SeedMember {
        email,
        display_name: format!("{first} {last}"),
        role,
        admin_access: role.default_admin_access(),
        login_enabled,
        created_at,
        last_sign_in_at,
    }
}

/// "Ramírez" → "ramirez", "O'Brien" → "obrien".
fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'â' | 'ä' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' | 'É' => Some('e'),
            'í' | 'ï' => Some('i'),
            'ó' | 'ö' | 'ô' => Some('o'),
            'ú' | 'ü' => Some('u'),
            'ç' => Some('c'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Whose proxy login permission names whom, among the first `count` seeded members:
/// the first support engineer (member 4) and the first editor (member 2) each get a
/// few colleagues with admin access (listed in their **Login as** menu) and a few
/// plain members (reached from the blade, or by `alias_login`). Written by the first
/// super user, as a new installation would set them up. Pairs of (target, actor)
/// indexes, from the roles the seed gives.
pub fn proxy_grants(seed: u64, count: u64) -> Vec<(usize, usize)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let people: Vec<SeedMember> = (0..count.min(400)).map(|i| member(&mut rng, seed, i)).collect();
    let usable = |i: usize| people.get(i).is_some_and(|m| m.login_enabled);
    let plain: Vec<usize> = (10..people.len())
        .filter(|i| usable(*i) && people[*i].role == Role::Member)
        .take(10)
        .collect();
    let (support, editor) = (3, 1);
    let mut pairs = Vec::new();
    // Colleagues with admin access: the other support engineers for the support
    // engineer; an editor and two support engineers for the editor.
    for target in [4, 5, 6] {
        if usable(target) && usable(support) {
            pairs.push((target, support));
        }
    }
    for target in [2, 5, 6] {
        if usable(target) && usable(editor) {
            pairs.push((target, editor));
        }
    }
    for (n, target) in plain.into_iter().enumerate() {
        pairs.push((target, if n < 5 { support } else { editor }));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population(seed: u64, n: u64) -> Vec<SeedMember> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|i| member(&mut rng, seed, i)).collect()
    }

    #[test]
    fn the_demo_agents_get_colleagues_for_login_as_and_members_for_the_blade() {
        for seed in [1, 7, 42] {
            let people = population(seed, 400);
            let pairs = proxy_grants(seed, 400);
            for actor in [1, 3] {
                let targets: Vec<&SeedMember> = pairs
                    .iter()
                    .filter(|(_, a)| *a == actor)
                    .map(|(t, _)| &people[*t])
                    .collect();
                let with_access = targets.iter().filter(|m| m.admin_access).count();
                let plain = targets.iter().filter(|m| !m.admin_access).count();
                assert!(
                    with_access >= 2,
                    "seed {seed}, actor {actor}: {with_access} in Login as"
                );
                assert_eq!(plain, 5, "seed {seed}, actor {actor}");
                for target in targets {
                    assert!(target.login_enabled);
                    assert!(
                        target.role.rank() <= people[actor].role.rank(),
                        "no grant to a higher rank"
                    );
                }
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_members() {
        assert_eq!(population(7, 200), population(7, 200));
        assert_ne!(population(7, 50), population(8, 50));
    }

    #[test]
    fn seeded_members_look_real_and_cover_every_role() {
        let members = population(1, 2_000);
        for role in Role::ALL {
            assert!(members.iter().any(|m| m.role == role), "no {role}");
        }
        let emails: std::collections::HashSet<_> = members.iter().map(|m| m.email.to_lowercase()).collect();
        assert_eq!(emails.len(), members.len(), "emails are unique");
        for m in &members {
            assert!(app::email::validate_email(&m.email).is_ok(), "{}", m.email);
            assert!(m.email.is_ascii());
            assert!(m.display_name.contains(' '));
            assert_eq!(m.admin_access, m.role != Role::Member);
        }
        let disabled = members.iter().filter(|m| !m.login_enabled).count();
        assert!(disabled > 0 && disabled < members.len() / 10, "{disabled}");
        assert_eq!(ascii_lower("Ramírez"), "ramirez");
        let in_groups = (0..2_000).filter(|i| !groups_of(1, *i).is_empty()).count();
        assert!((1_200..1_800).contains(&in_groups), "{in_groups}");
        assert!((0..2_000).any(|i| groups_of(1, i).len() == 2));
        assert_eq!(groups_of(1, 17), groups_of(1, 17));
        assert_eq!(ascii_lower("O'Brien"), "obrien");
    }
}
