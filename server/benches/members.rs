//! `cargo bench -p server --bench members`: the members list at scale. Seeds
//! BEHALF_BENCH_MEMBERS members (default 1,000,000) into a temporary SQLite file
//! (and a PostgreSQL schema when BEHALF_TEST_POSTGRES_URL is set), then runs 200
//! varied searches — prefixes, roles, every sort, pages deep in the results — once
//! server-side (the query alone) and once as whole server-rendered pages over HTTP.

mod support;

use std::time::Instant;

use app::{
    clock::Clock,
    db::Db,
    members::{
        search::{list_with_threshold, FETCH_AT_MOST},
        ListParams, ListQuery, Role, SortKey, PAGE_SIZE,
    },
    password::hasher::PasswordHasher,
    state::AppState,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use support::{bench_settings, on_each_database, summary, with_db};

const PREFIXES: &[&str] = &[
    "an",
    "ann",
    "sam",
    "mar",
    "mari",
    "ja",
    "jam",
    "ai",
    "li",
    "ol",
    "no",
    "em",
    "mat",
    "so",
    "lu",
    "ch",
    "el",
    "bj",
    "zo",
    "jo",
    "fa",
    "om",
    "pr",
    "ar",
    "me",
    "we",
    "yu",
    "ha",
    "ke",
    "in",
    "hu",
    "le",
    "jon",
    "fr",
    "os",
    "ni",
    "kw",
    "am",
    "ta",
    "lei",
    "di",
    "ca",
    "va",
    "ra",
    "is",
    "to",
    "pe",
    "lee",
    "garc",
    "müll",
    "nguy",
    "oka",
    "o'b",
    "kowal",
    "sil",
    "wat",
    "ann.lee",
    "sam.ortiz",
    "maria.g",
    "olivia.k",
];

/// 200 queries, the same for both databases: a prefix of a first name, a last name
/// or an email (or an ID), sometimes a role or a group, any sort either way, and
/// mostly a page deep in that search's results — reached the way a person reaches it,
/// by following "Next" (and sometimes "Previous") from page 1.
async fn queries(db: &Db, count: i64) -> Vec<ListQuery> {
    let mut rng = StdRng::seed_from_u64(99);
    let mut out = Vec::new();
    while out.len() < 200 {
        let q = if rng.random_bool(0.05) {
            rng.random_range(1..=count).to_string()
        } else {
            PREFIXES[rng.random_range(0..PREFIXES.len())].to_string()
        };
        let role = rng
            .random_bool(0.15)
            .then(|| Role::ALL[rng.random_range(0..4)].as_str());
        let group = rng.random_bool(0.1).then(|| rng.random_range(1..=12).to_string());
        let sort = SortKey::ALL[rng.random_range(0..SortKey::ALL.len())].as_str();
        let dir = if rng.random_bool(0.5) { "desc" } else { "asc" };
        let mut query = ListQuery::parse(&ListParams {
            q: Some(q.clone()),
            role: role.map(str::to_string),
            group: group.clone(),
            sort: Some(sort.to_string()),
            dir: Some(dir.to_string()),
            page: Some(1),
            ..ListParams::default()
        })
        .unwrap();
        let depth = if rng.random_bool(0.8) {
            rng.random_range(5..=60)
        } else {
            0
        };
        for _ in 0..depth {
            let page = list_with_threshold(db, query.clone(), FETCH_AT_MOST)
                .await
                .unwrap();
            match page.next {
                Some(after) => {
                    query = ListQuery {
                        page: query.page + 1,
                        after: Some(after),
                        before: None,
                        ..query
                    }
                }
                None => break,
            }
        }
        if query.page > 2 && rng.random_bool(0.15) {
            let page = list_with_threshold(db, query.clone(), FETCH_AT_MOST)
                .await
                .unwrap();
            if let Some(before) = page.previous {
                query = ListQuery {
                    page: query.page - 1,
                    after: None,
                    before: Some(before),
                    ..query
                };
            }
        }
        out.push(query);
    }
    out
}

async fn run(db: Db, label: &str, count: u64) {
    db.migrate().await.unwrap();
    let (present,): (i64,) = with_db!(&db, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM members").fetch_one(pool).await.unwrap()
    });
    if present >= count as i64 {
        println!("-- {label}: {present} members already there (BEHALF_BENCH_KEEP)");
    } else {
        let started = Instant::now();
        server::seed::insert_members(&db, 1, count, "$argon2id$v=19$m=19456,t=2,p=1$unused", |_| {})
            .await
            .unwrap();
        println!(
            "-- {label}: seeded {count} members in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    with_db!(&db, pool => {
        sqlx::query(if label == "SQLite" { "ANALYZE" } else { "ANALYZE members" }).execute(pool).await.unwrap();
    });
    let queries = queries(&db, count as i64).await;
    let deep = queries.iter().filter(|q| q.page > 1).count();
    println!(
        "   {} queries, {deep} past page 1, deepest page {} (row {})",
        queries.len(),
        queries.iter().map(|q| q.page).max().unwrap(),
        queries
            .iter()
            .map(|q| (q.page - 1) * PAGE_SIZE + 1)
            .max()
            .unwrap()
    );

    let mut server_side = Vec::new();
    let mut timed = Vec::new();
    for query in &queries {
        let started = Instant::now();
        let page = list_with_threshold(&db, query.clone(), FETCH_AT_MOST)
            .await
            .unwrap();
        let ms = started.elapsed().as_secs_f64() * 1e3;
        server_side.push(ms);
        timed.push((ms, query.clone()));
        std::hint::black_box(page);
    }
    summary("list query (service, server-side)", server_side);
    if std::env::var("BEHALF_BENCH_SLOWEST").is_ok() {
        timed.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
        for (ms, q) in timed.iter().take(15) {
            println!(
                "   {ms:8.2} ms  q={:?} role={:?} group={:?} sort={:?} desc={} page={} after={:?} before={:?}",
                q.q, q.role, q.group, q.sort, q.descending, q.page, q.after, q.before
            );
        }
    }

    // Whole pages: an admin signed in over HTTP, then GET /admin/members?… for each query.
    let state = AppState::new(
        db.clone(),
        Clock::system(),
        PasswordHasher::new(2),
        bench_settings(),
    );
    let admin = app::members::directory::NewMember {
        email: "bench.admin@example.net".into(),
        display_name: "Bench Admin".into(),
        role: Role::SuperUser,
        admin_access: true,
        login_enabled: true,
    };
    app::members::directory::create_member(
        &db,
        &state.hasher,
        state.clock.now(),
        admin,
        app::password::Password::new("bench password"),
        None,
    )
    .await
    .or_else(|error| match error {
        // Kept from an earlier run (BEHALF_BENCH_KEEP).
        app::error::AppError::Conflict(_) => Ok(0),
        other => Err(other),
    })
    .unwrap();
    let addr = server::spawn_on_free_port(state, false).await.unwrap();
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = client
        .post(format!("http://{addr}/api/login"))
        .form(&[
            ("email", "bench.admin@example.net"),
            ("password", "bench password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());
    let mut pages = Vec::new();
    for query in &queries {
        let href = app::members::ui::members_href(
            &query.q,
            query.role.map(Role::as_str),
            query.group.map(|g| g.to_string()).as_deref(),
            Some(query.sort.as_str()),
            query.descending,
            query.page,
            match (query.after, query.before) {
                (Some(id), _) => Some(("after", id)),
                (_, Some(id)) => Some(("before", id)),
                _ => None,
            },
        );
        let started = Instant::now();
        let response = client.get(format!("http://{addr}{href}")).send().await.unwrap();
        assert!(response.status().is_success(), "{href}: {}", response.status());
        let body = response.text().await.unwrap();
        pages.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(body.contains("aria-label=\"Members\""));
    }
    summary("whole page /admin/members?… (SSR over HTTP)", pages);
}

fn main() {
    let count: u64 = std::env::var("BEHALF_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "machine: {} cores; {count} members",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(on_each_database(|db, label| run(db, label, count)));
}
