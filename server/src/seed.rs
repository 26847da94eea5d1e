//! `behalf seed`: realistic demo members, the same ones for the same seed, inserted
//! in batches. Every seeded member shares one hash of the given password (hashing
//! each would take hours at argon2id's cost).

use std::fmt;

use app::{
    auth::{password::hash_password_blocking, Password},
    db::{BeginWrite, Db},
    members::{service::validate_new_password, Role},
    with_db,
};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sqlx::QueryBuilder;

use crate::{config::SeedArgs, describe, open_database, CliResult};

const FIRST_NAMES: &[&str] = &[
    "Ann",
    "Sam",
    "Maria",
    "James",
    "Aiko",
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mateo",
    "Sofia",
    "Lucas",
    "Chloé",
    "Élodie",
    "Björn",
    "Zoë",
    "José",
    "Fatima",
    "Omar",
    "Priya",
    "Arjun",
    "Mei",
    "Wei",
    "Yuki",
    "Hana",
    "Kenji",
    "Ines",
    "Hugo",
    "Lena",
    "Jonas",
    "Freya",
    "Oskar",
    "Nia",
    "Kwame",
    "Amara",
    "Tariq",
    "Leila",
    "Diego",
    "Camila",
    "Valentina",
    "Rafael",
    "Isabel",
    "Tomás",
    "Ana",
    "Pedro",
    "Chen",
    "Lin",
    "Ravi",
    "Anika",
    "Sven",
    "Astrid",
    "Mikael",
    "Elif",
    "Emre",
    "Selin",
    "Dmitri",
    "Olga",
    "Ivan",
    "Katya",
    "Grace",
    "Henry",
    "Alice",
    "George",
    "Ruby",
    "Oscar",
    "Ivy",
    "Leo",
    "Mila",
    "Ezra",
    "Nora",
    "Felix",
    "Clara",
    "Theo",
    "Hazel",
    "Jude",
    "Iris",
    "Miles",
    "Ada",
    "Rosa",
    "Pablo",
    "Lucia",
    "Marco",
    "Giulia",
];

const LAST_NAMES: &[&str] = &[
    "Lee",
    "Ortiz",
    "Garcia",
    "Smith",
    "Tanaka",
    "Johnson",
    "Brown",
    "Martin",
    "Dubois",
    "Müller",
    "Schmidt",
    "Rossi",
    "Silva",
    "Santos",
    "Kowalski",
    "Nowak",
    "Novak",
    "Jensen",
    "Nielsen",
    "Larsen",
    "Andersson",
    "Johansson",
    "Virtanen",
    "Kim",
    "Park",
    "Choi",
    "Nguyen",
    "Tran",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Patel",
    "Shah",
    "Singh",
    "Kumar",
    "Khan",
    "Ali",
    "Hassan",
    "Yilmaz",
    "Kaya",
    "Demir",
    "Ivanov",
    "Petrov",
    "Popescu",
    "Horvat",
    "Murphy",
    "O'Brien",
    "Kelly",
    "Walsh",
    "Wilson",
    "Taylor",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Green",
    "Hall",
    "Wood",
    "Clarke",
    "Moreau",
    "Laurent",
    "Fournier",
    "Romero",
    "Navarro",
    "Torres",
    "Ramírez",
    "Flores",
    "Costa",
    "Pereira",
    "Okafor",
    "Mensah",
    "Abebe",
    "Haddad",
    "Cohen",
    "Levi",
    "Sato",
    "Suzuki",
    "Watanabe",
    "Yamamoto",
    "Nakamura",
];

/// 2024-01-01T00:00:00Z: seeded times are spread over the years after it, so they
/// do not depend on when the seed ran.
const EPOCH_2024: i64 = 1_704_067_200_000;
const YEAR: i64 = 365 * 24 * 3_600_000;

/// Rows per INSERT statement (11 values each, well under both databases' limits).
const BATCH: usize = 1_000;

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

pub struct SeedReport {
    pub requested: u64,
    pub inserted: u64,
    pub seconds: f64,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Seeded {} of {} members in {:.1} s",
            self.inserted, self.requested, self.seconds
        )?;
        if self.inserted < self.requested {
            write!(
                f,
                " ({} already existed: same seed run before?)",
                self.requested - self.inserted
            )?;
        }
        Ok(())
    }
}

pub async fn run(database_url: &str, args: SeedArgs) -> CliResult<SeedReport> {
    let password = Password::new(args.password);
    validate_new_password(&password).map_err(describe)?;
    let db = open_database(database_url).await?;
    let started = std::time::Instant::now();
    let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
    let progress = ProgressBar::new(args.members);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{bar:40}] {pos}/{len} members ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let inserted = insert_members(&db, args.seed, args.members, &hash, |n| progress.inc(n)).await?;
    progress.finish_and_clear();
    db.close().await;
    Ok(SeedReport {
        requested: args.members,
        inserted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Inserts `count` generated members in batches; members whose email exists are
/// skipped. Returns how many were inserted.
pub async fn insert_members(
    db: &Db,
    seed: u64,
    count: u64,
    password_hash: &str,
    mut on_batch: impl FnMut(u64),
) -> CliResult<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut inserted = 0;
    let mut index = 0;
    while index < count {
        let size = (count - index).min(BATCH as u64);
        let batch: Vec<SeedMember> = (index..index + size).map(|i| member(&mut rng, seed, i)).collect();
        inserted += with_db!(db, pool => {
            let mut tx = pool.begin_write().await?;
            let mut query = QueryBuilder::new(
                "INSERT INTO members (email, email_key, display_name, name_key, password_hash, role, \
                 admin_access, login_enabled, created_at, updated_at, last_sign_in_at) ",
            );
            query.push_values(&batch, |mut row, m| {
                row.push_bind(&m.email)
                    .push_bind(m.email.to_lowercase())
                    .push_bind(&m.display_name)
                    .push_bind(m.display_name.to_lowercase())
                    .push_bind(password_hash)
                    .push_bind(m.role.as_str())
                    .push_bind(m.admin_access)
                    .push_bind(m.login_enabled)
                    .push_bind(m.created_at)
                    .push_bind(m.created_at)
                    .push_bind(m.last_sign_in_at);
            });
            query.push(" ON CONFLICT (email_key) DO NOTHING");
            let done = query.build().execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            done
        });
        on_batch(size);
        index += size;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population(seed: u64, n: u64) -> Vec<SeedMember> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|i| member(&mut rng, seed, i)).collect()
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
            assert!(
                app::members::service::validate_email(&m.email).is_ok(),
                "{}",
                m.email
            );
            assert!(m.email.is_ascii());
            assert!(m.display_name.contains(' '));
            assert_eq!(m.admin_access, m.role != Role::Member);
        }
        let disabled = members.iter().filter(|m| !m.login_enabled).count();
        assert!(disabled > 0 && disabled < members.len() / 10, "{disabled}");
        assert_eq!(ascii_lower("Ramírez"), "ramirez");
        assert_eq!(ascii_lower("O'Brien"), "obrien");
    }
}
