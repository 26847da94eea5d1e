//! The demo a new database gets from its first `behalf serve` (unless `--no-demo` or
//! `BEHALF_DEMO=0`): the first super user, a few hundred seeded members in groups with
//! proxy login permissions, the catalogue, and a short history — orders, sessions on
//! behalf left and revoked — written through the app's own services, so the audit
//! viewer, a member's Access history and `behalf audit verify` all have something to
//! show. Then the logins to try are printed.
//!
//! Two instances starting at once on one new PostgreSQL database: the first super
//! user's insert is the claim. Its email is unique, so of two concurrent inserts one
//! waits for the other's commit and fails; only the instance whose insert succeeded
//! goes on to build the demo, and the other serves the database as it finds it.

use app::{
    audit_action::AuditAction,
    audit_writer::record,
    auth::service as auth,
    clock::{Clock, Millis, HOUR, MINUTE},
    context::RequestContext,
    db::Db,
    error::AppError,
    members::service::{change_member, permit_edit, MemberChanges},
    mode::Mode,
    on_behalf::service as on_behalf,
    orders::service::{self as orders, ensure_catalogue},
    oversight::service as oversight,
    password::{hasher::hash_password_blocking, Password},
    role::Role,
    session::find_live,
    state::AppState,
};
use std::net::SocketAddr;

use rand::{rngs::StdRng, SeedableRng};

use super::first_user::{create_super_user, print_super_user};
use super::{insert_members, member, proxy_grants, GROUPS};
use crate::startup::{command_record, describe, CliResult};

/// Seeded members in the demo (with the first super user: a few hundred).
pub const MEMBERS: u64 = 300;
/// The generator's seed: `behalf seed --seed 1` makes the same first members.
const SEED: u64 = 1;
/// Every seeded member's password (the super user's is random, and printed once).
pub const PASSWORD: &str = "behalf-demo-password";
/// The first super user, as `behalf init-admin` names them.
pub const ADMIN_EMAIL: &str = "admin@behalf.local";
const DAY: Millis = 24 * HOUR;

/// Whether the demo is wanted: not with `--no-demo`, nor with `BEHALF_DEMO` set to
/// `0`, `false`, `no` or `off`.
pub fn wanted(no_demo: bool) -> bool {
    !no_demo && !std::env::var("BEHALF_DEMO").is_ok_and(|value| turned_off(&value))
}

fn turned_off(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

/// On a new database (no member at all), unless the demo is turned off: the first
/// super user (credentials printed once, as `init-admin` prints them), the demo, and
/// the logins to try. Returns whether this instance made them. A database with any
/// member is never touched.
/// The demo is made only for a server that listens on this machine alone: its
/// accounts share a published password.
pub async fn on_first_start(state: &AppState, no_demo: bool, addr: SocketAddr) -> CliResult<bool> {
    if !wanted(no_demo) || has_members(&state.db).await? {
        return Ok(false);
    }
    if !addr.ip().is_loopback() {
        println!(
            "No demo: this new database is served on {addr}, beyond this machine, and the demo's \
             accounts share a published password. Create the first super user with `behalf init-admin`."
        );
        return Ok(false);
    }
    // The demo's history took place over the last three days, on a clock of its own.
    let start = app::clock::system_now() / MINUTE * MINUTE - 3 * DAY;
    let demo = AppState {
        clock: Clock::manual(start),
        ..state.clone()
    };
    let password = match create_super_user(&demo.db, start, ADMIN_EMAIL, "serve").await {
        Ok(password) => password,
        // Another instance has just made the first super user: the demo is theirs.
        Err(AppError::Conflict(_)) => {
            tracing::info!("another instance is setting up this new database");
            return Ok(false);
        }
        Err(error) => return Err(describe(error)),
    };
    // Printed at once: whatever happens next, this password is not lost.
    print_super_user(ADMIN_EMAIL, &password);
    let people = seed(&demo).await?;
    history(&demo, &people, &password).await?;
    print_logins(&people);
    Ok(true)
}

async fn has_members(db: &Db) -> CliResult<bool> {
    let (any,): (i64,) = with_db!(db, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM (SELECT 1 FROM members LIMIT 1) AS any_member")
            .fetch_one(pool)
            .await?
    });
    Ok(any > 0)
}

/// A demo login.
struct Person {
    id: i64,
    email: String,
    name: String,
}

/// Who the demo's logins and history are about.
struct People {
    support: Person,
    editor: Person,
    member: Person,
}

/// The seeded members, groups, proxy login permissions (those `behalf seed` writes)
/// and the catalogue, with one `members_seeded` record; who the demo logins are.
async fn seed(demo: &AppState) -> CliResult<People> {
    let password = Password::new(PASSWORD);
    let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
    let inserted = insert_members(&demo.db, SEED, MEMBERS, &hash, |_| {}).await?;
    ensure_catalogue(&demo.db, demo.clock.now()).await?;
    let mut event = command_record(AuditAction::MembersSeeded, "serve");
    if let Some(details) = event.details.as_object_mut() {
        details.insert("demo".into(), true.into());
        details.insert("requested".into(), MEMBERS.into());
        details.insert("inserted".into(), inserted.into());
        details.insert("seed".into(), SEED.into());
    }
    record(&demo.db, demo.clock.now(), event)
        .await
        .map_err(describe)?;
    // The first support engineer and the first editor of the seed, and the first plain
    // member whose proxy login permission names that support engineer.
    let (support, editor) = (3, 1);
    let member = proxy_grants(SEED, MEMBERS)
        .into_iter()
        .find(|(target, actor)| *actor == support && seeded(*target).role == Role::Member)
        .map(|(target, _)| target)
        .ok_or("the demo seed has no member for its support engineer")?;
    Ok(People {
        support: person(&demo.db, support).await?,
        editor: person(&demo.db, editor).await?,
        member: person(&demo.db, member).await?,
    })
}

/// The `index`-th seeded member as the generator makes them.
fn seeded(index: usize) -> super::SeedMember {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut found = member(&mut rng, SEED, 0);
    for i in 1..=index as u64 {
        found = member(&mut rng, SEED, i);
    }
    found
}

async fn person(db: &Db, index: usize) -> CliResult<Person> {
    let email = seeded(index).email;
    let (id, name): (i64, String) = with_db!(db, pool => {
        sqlx::query_as("SELECT id, display_name FROM members WHERE email_key = $1")
            .bind(email.to_lowercase())
            .fetch_one(pool)
            .await?
    });
    Ok(Person { id, email, name })
}

/// A signed-in browser of the demo's history: what the request pipeline would make
/// of its token.
struct Visit {
    token: String,
    request: RequestContext,
}

fn from_the_demo() -> RequestContext {
    RequestContext {
        ip: Some("127.0.0.1".into()),
        user_agent: Some("Behalf demo".into()),
        ..RequestContext::default()
    }
}

/// The live session of `token`, as the pipeline finds it.
async fn visit(state: &AppState, token: &str) -> CliResult<Visit> {
    let lookup = find_live(state, token).await.map_err(describe)?;
    let session = lookup
        .session
        .ok_or("a session of the demo ended before its time")?;
    Ok(Visit {
        token: token.to_string(),
        request: RequestContext {
            session: Some(session),
            ..from_the_demo()
        },
    })
}

async fn sign_in(state: &AppState, email: &str, password: &str) -> CliResult<Visit> {
    let request = from_the_demo();
    let token = auth::sign_in(state, &request, email, Password::new(password))
        .await
        .map_err(describe)?;
    visit(state, token.expose()).await
}

async fn sign_out(state: &AppState, visit: &Visit) -> CliResult<()> {
    auth::sign_out(state, &visit.request).await.map_err(describe)
}

async fn order(state: &AppState, visit: &Visit, product: i64, quantity: i64) -> CliResult<()> {
    let (product, quantity) = (product.to_string(), quantity.to_string());
    orders::place(state, &visit.request, &product, &quantity)
        .await
        .map_err(describe)?;
    Ok(())
}

/// `actor` starts a session on behalf of `member_id`, re-entering the demo password.
async fn start(state: &AppState, actor: &Visit, member_id: i64, reason: &str) -> CliResult<Visit> {
    // The demo's past sessions on behalf acted (one placed an order).
    let password = Password::new(PASSWORD);
    let token = on_behalf::start(state, &actor.request, member_id, password, reason, Mode::Act)
        .await
        .map_err(describe)?;
    visit(state, token.expose()).await
}

/// The catalogue's product IDs, in the order `ensure_catalogue` adds them.
async fn products(db: &Db) -> CliResult<Vec<i64>> {
    let rows: Vec<(i64,)> = with_db!(db, pool => {
        sqlx::query_as("SELECT id FROM products ORDER BY id").fetch_all(pool).await?
    });
    let ids: Vec<i64> = rows.into_iter().map(|(id,)| id).collect();
    if ids.len() < 5 {
        return Err("the demo catalogue is missing".into());
    }
    Ok(ids)
}

/// Three days of history, each step through the service a page calls: the super user
/// names the support engineer and the editor in the member's proxy login permission;
/// the member orders; the support engineer orders on the member's behalf and leaves;
/// the editor looks on the member's behalf until the super user ends that session.
async fn history(demo: &AppState, people: &People, admin_password: &str) -> CliResult<()> {
    let clock = &demo.clock;
    let product = products(&demo.db).await?;
    let member = people.member.id;

    clock.advance(20 * MINUTE);
    let admin = sign_in(demo, ADMIN_EMAIL, admin_password).await?;
    let permit = permit_edit(demo, &admin.request, member)
        .await
        .map_err(describe)?;
    let changes = MemberChanges {
        proxy_login_permission: Some([people.support.id, people.editor.id].into()),
        ..MemberChanges::default()
    };
    change_member(demo, permit, changes).await.map_err(describe)?;
    sign_out(demo, &admin).await?;

    clock.advance(5 * HOUR);
    let own = sign_in(demo, &people.member.email, PASSWORD).await?;
    order(demo, &own, product[0], 2).await?;
    clock.advance(3 * MINUTE);
    order(demo, &own, product[3], 1).await?;
    sign_out(demo, &own).await?;

    clock.advance(DAY);
    let support = sign_in(demo, &people.support.email, PASSWORD).await?;
    let reason = "Ticket T-1042: the member cannot finish checking out";
    let acting = start(demo, &support, member, reason).await?;
    clock.advance(4 * MINUTE);
    order(demo, &acting, product[4], 1).await?;
    clock.advance(2 * MINUTE);
    let (back, _) = on_behalf::leave(demo, &acting.request).await.map_err(describe)?;
    let back = back.ok_or("the support engineer's own session did not come back")?;
    sign_out(demo, &visit(demo, back.expose()).await?).await?;

    clock.advance(DAY + 3 * HOUR);
    let editor = sign_in(demo, &people.editor.email, PASSWORD).await?;
    let acting = start(
        demo,
        &editor,
        member,
        "Ticket T-1057: checking the member's orders",
    )
    .await?;
    clock.advance(6 * MINUTE);
    let admin = sign_in(demo, ADMIN_EMAIL, admin_password).await?;
    let session = acting.request.session.as_ref().map_or(0, |s| s.id);
    oversight::end(demo, &admin.request, session)
        .await
        .map_err(describe)?;
    sign_out(demo, &admin).await?;
    // The editor's next request finds the session on behalf over and gets their own
    // session back; they sign out.
    clock.advance(MINUTE);
    if let Some(own) = find_live(demo, &acting.token).await.map_err(describe)?.reissued {
        sign_out(demo, &visit(demo, own.expose()).await?).await?;
    }
    Ok(())
}

fn print_logins(people: &People) {
    let Person { email, name, .. } = &people.member;
    println!();
    println!(
        "This new database has a small demo to try: {MEMBERS} members in {} groups, proxy login",
        GROUPS.len()
    );
    println!("permissions, a product catalogue, and a few past orders and sessions on behalf (see");
    println!("the audit at /admin/audit). Sign in at /login as:");
    println!("  Super user:        {ADMIN_EMAIL} (with the password above)");
    for (role, person) in [("Support engineer", &people.support), ("Editor", &people.editor)] {
        println!("  {:<18} {} ({})", format!("{role}:"), person.email, person.name);
    }
    println!("  Member:            {email} ({name}: see My account, Access history)");
    println!("Every demo member's password is {PASSWORD}.");
    println!("To start without demo data: BEHALF_DEMO=0, or `behalf serve --no-demo`, on a new database.");
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behalf_demo_turns_the_demo_off_with_any_usual_no() {
        for off in ["0", "false", "NO", " off "] {
            assert!(turned_off(off), "{off}");
        }
        for on in ["1", "true", "yes", ""] {
            assert!(!turned_off(on), "{on}");
        }
    }

    #[test]
    fn the_demo_logins_are_the_seeds_support_engineer_editor_and_a_plain_member() {
        assert_eq!(seeded(3).role, Role::Support);
        assert_eq!(seeded(3).email, "mila.levi4@example.com");
        assert_eq!(seeded(1).role, Role::Editor);
        let pairs = proxy_grants(SEED, MEMBERS);
        assert!(pairs
            .iter()
            .any(|(target, actor)| *actor == 3 && seeded(*target).role == Role::Member));
    }
}
