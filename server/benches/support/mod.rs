//! What the benchmarks share: percentiles, and running a bench on a temporary
//! SQLite file and then (when BEHALF_TEST_POSTGRES_URL is set) a throwaway
//! PostgreSQL schema.

use std::future::Future;

use app::db::Db;

/// Prints median / p95 / p99 of `samples` (milliseconds) and returns the median.
pub fn summary(label: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label:<48} n={:<5} median {:>8.3} ms   p95 {:>8.3} ms   p99 {:>8.3} ms",
        samples.len(),
        at(0.5),
        at(0.95),
        at(0.99)
    );
    at(0.5)
}

/// Runs `bench` on a fresh SQLite file, then on a fresh PostgreSQL schema (dropped
/// afterwards) or says why PostgreSQL is skipped.
pub async fn on_each_database<F, Fut>(bench: F)
where
    F: Fn(Db, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    // BEHALF_BENCH_KEEP=DIR keeps the databases (DIR/bench.db and the schema
    // behalf_bench_keep) for the next run, which then skips seeding.
    let keep = std::env::var("BEHALF_BENCH_KEEP").ok();
    let dir = tempfile::tempdir().unwrap();
    let path = match &keep {
        Some(keep) => std::path::PathBuf::from(keep).join("bench.db"),
        None => dir.path().join("bench.db"),
    };
    let url = format!("sqlite:{}", path.display());
    // A fixed key for the benchmarks' audit chains (kept databases stay verifiable).
    app::audit_writer::install_key(app::audit_writer::AuditKey::from_bytes([0x42; 32])).unwrap();
    bench(Db::connect(&url).await.unwrap(), "SQLite").await;
    match std::env::var("BEHALF_TEST_POSTGRES_URL") {
        Ok(pg) => {
            let schema = match &keep {
                Some(_) => "behalf_bench_keep".to_string(),
                None => format!("behalf_bench_{}", std::process::id()),
            };
            let admin = sqlx::PgPool::connect(&pg).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            bench(
                Db::connect_in_schema(&pg, Some(&schema)).await.unwrap(),
                "PostgreSQL",
            )
            .await;
            if keep.is_none() {
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await
                    .unwrap();
            }
        }
        Err(_) => println!("-- PostgreSQL skipped: BEHALF_TEST_POSTGRES_URL is not set"),
    }
}

/// The product's settings, without the per-address sign-in limit: every request of a
/// benchmark comes from 127.0.0.1, and the limit is not what is measured.
pub fn bench_settings() -> app::state::Settings {
    app::state::Settings {
        sign_in_per_ip_per_minute: 1_000_000,
        ..app::state::Settings::default()
    }
}

/// Runs `$body` with `$pool` bound to the concrete pool (the benchmarks' own setup
/// statements); the body is compiled once per database.
#[allow(unused_macros)]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            app::db::Db::Sqlite($pool) => $body,
            app::db::Db::Postgres($pool) => $body,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use with_db;
