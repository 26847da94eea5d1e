//! The `behalf` binary's commands, run as an operator would.

use std::process::{Command, Output};

fn behalf(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_behalf"))
        .args(args)
        .env("BEHALF_DATABASE_URL", database_url)
        .env("BEHALF_LOG", "warn")
        .output()
        .expect("behalf runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn count(url: &str, sql: &str) -> i64 {
    let db = app::db::Db::connect(url).await.unwrap();
    let (n,): (i64,) = app::with_db!(&db, pool => sqlx::query_as(sql).fetch_one(pool).await.unwrap());
    db.close().await;
    n
}

#[tokio::test]
async fn migrate_create_member_and_init_admin_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("cli.db").display());

    let out = behalf(&url, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("cli.db").exists(), "the SQLite file is created");

    let out = behalf(
        &url,
        &[
            "create-member",
            "--email",
            "Ann@Example.com",
            "--password",
            "long enough",
            "--name",
            "Ann Lee",
            "--role",
            "editor",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Created member"), "{}", text(&out));
    assert_eq!(count(&url, "SELECT COUNT(*) FROM members WHERE role = 'editor' AND admin_access = TRUE AND email_key = 'ann@example.com'").await, 1);

    // The same email in another case is a clear error, and nothing changes.
    let out = behalf(
        &url,
        &[
            "create-member",
            "--email",
            "ANN@example.com",
            "--password",
            "long enough",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    let out = behalf(
        &url,
        &[
            "create-member",
            "--email",
            "bob@example.com",
            "--password",
            "short",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("at least 8"), "{}", text(&out));
    let out = behalf(
        &url,
        &[
            "create-member",
            "--email",
            "not-an-email",
            "--password",
            "long enough",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("email"), "{}", text(&out));
    assert_eq!(count(&url, "SELECT COUNT(*) FROM members").await, 1);

    // The password never reaches the stored row in the clear.
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM members WHERE password_hash LIKE '$argon2id$%'"
        )
        .await,
        1
    );

    let out = behalf(&url, &["init-admin"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Password:"), "{}", text(&out));
    let out = behalf(&url, &["init-admin"]);
    assert!(
        text(&out).contains("already exists"),
        "printed only once: {}",
        text(&out)
    );
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM members WHERE role = 'super_user'").await,
        1
    );
    // Each member made from the command line is recorded, naming the command; the
    // refused attempts changed nothing and wrote nothing.
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM audit_events WHERE action = 'member_created' AND details LIKE '%\"via\":\"create-member\"%' AND details LIKE '%ann@example.com%' AND subject_id IS NOT NULL").await,
        1
    );
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM audit_events WHERE action = 'member_created' AND details LIKE '%\"via\":\"init-admin\"%'").await,
        1
    );
    assert_eq!(count(&url, "SELECT COUNT(*) FROM audit_events").await, 2);
}

#[tokio::test]
async fn seed_is_deterministic_and_skips_existing_members() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("seed.db").display());
    let out = behalf(
        &url,
        &[
            "seed",
            "--members",
            "2500",
            "--seed",
            "42",
            "--password",
            "demo-password",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Seeded 2500 of 2500"), "{}", text(&out));
    assert_eq!(count(&url, "SELECT COUNT(*) FROM members").await, 2500);
    assert_eq!(
        count(&url, "SELECT COUNT(DISTINCT password_hash) FROM members").await,
        1,
        "one shared hash"
    );

    // One record per run, however many members it made.
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM audit_events WHERE action = 'members_seeded' AND details LIKE '%\"inserted\":2500%'").await,
        1
    );

    let out = behalf(&url, &["seed", "--members", "2500", "--seed", "42"]);
    assert!(text(&out).contains("Seeded 0 of 2500"), "{}", text(&out));
    assert_eq!(count(&url, "SELECT COUNT(*) FROM members").await, 2500);
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'members_seeded'"
        )
        .await,
        2
    );

    let other = format!("sqlite:{}", dir.path().join("again.db").display());
    behalf(&other, &["seed", "--members", "300", "--seed", "42"]);
    let db = app::db::Db::connect(&url).await.unwrap();
    let first: Vec<(String,)> = app::with_db!(&db, pool => sqlx::query_as("SELECT email FROM members ORDER BY id LIMIT 300").fetch_all(pool).await.unwrap());
    let db2 = app::db::Db::connect(&other).await.unwrap();
    let second: Vec<(String,)> = app::with_db!(&db2, pool => sqlx::query_as("SELECT email FROM members ORDER BY id LIMIT 300").fetch_all(pool).await.unwrap());
    assert_eq!(first, second, "same seed, same members");

    let out = behalf(&url, &["seed", "--members", "0"]);
    assert!(!out.status.success());
}

#[test]
fn help_explains_each_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_behalf"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&out);
    for command in ["serve", "migrate", "create-member", "seed", "init-admin"] {
        assert!(help.contains(command), "{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_behalf"))
        .args(["serve", "--help"])
        .env("BEHALF_DATABASE_URL", "postgres://u:secret@h/db")
        .output()
        .unwrap();
    let help = text(&out);
    assert!(help.contains("--addr") && help.contains("BEHALF_ADDR"), "{help}");
    assert!(!help.contains("secret"), "env values are never echoed: {help}");
}

#[test]
fn an_unsupported_database_url_is_a_clear_error() {
    let out = behalf("mysql://root@localhost/x", &["migrate"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unsupported database URL"), "{}", text(&out));
}

#[tokio::test]
async fn audit_verify_reports_ok_or_the_broken_record() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("audit.db").display());
    let out = behalf(&url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok: 0 audit records"), "{}", text(&out));

    // Two records through the real sign-in path.
    let db = app::db::Db::connect(&url).await.unwrap();
    let request = app::context::RequestContext::default();
    for action in ["sign_in_failed", "sign_in_failed"] {
        let event = app::audit_writer::NewEvent::new(action, &request);
        app::audit_writer::record(&db, 1, event).await.unwrap();
    }
    let out = behalf(&url, &["audit", "verify"]);
    assert!(text(&out).contains("ok: 2 audit records"), "{}", text(&out));

    app::with_db!(&db, pool => sqlx::query("UPDATE audit_events SET details = '{\"edited\":true}' WHERE id = 2").execute(pool).await.unwrap().rows_affected());
    db.close().await;
    let out = behalf(&url, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("broken at record 2"), "{}", text(&out));
}
