//! The `behalf` binary's commands, run as an operator would. Every audit record here
//! is written by the binary itself, with the key it keeps beside the database: this
//! process holds the harness's test key (see `common::TEST_AUDIT_KEY`).

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
    let (n,): (i64,) = with_db!(&db, pool => sqlx::query_as(sql).fetch_one(pool).await.unwrap());
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
    let first: Vec<(String,)> = with_db!(&db, pool => sqlx::query_as("SELECT email FROM members ORDER BY id LIMIT 300").fetch_all(pool).await.unwrap());
    let db2 = app::db::Db::connect(&other).await.unwrap();
    let second: Vec<(String,)> = with_db!(&db2, pool => sqlx::query_as("SELECT email FROM members ORDER BY id LIMIT 300").fetch_all(pool).await.unwrap());
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

/// Rewrites the whole chain from record `from` on with `key`, as someone with write
/// access to the database (and, or not, the key) would to hide an edit.
async fn rehash_from(db: &app::db::Db, from: i64, key: &app::audit_writer::AuditKey) {
    rehash_with(db, from, |prev, record| {
        app::audit_writer::chain_hash(key, prev, record)
    })
    .await;
}

/// `rehash_from` with any link function (the plain SHA-256 of unkeyed records, say).
async fn rehash_with(
    db: &app::db::Db,
    from: i64,
    link: impl Fn(&[u8], &app::audit_writer::AuditRecord) -> Vec<u8>,
) {
    use app::audit_writer::AuditRecord;
    with_db!(db, pool => {
        let records: Vec<AuditRecord> = sqlx::query_as(
            "SELECT id, at, actor_id, subject_id, session_id, action, object_type, object_id, details, ip, user_agent \
             FROM audit_events ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let mut prev: Vec<u8> = app::audit_writer::GENESIS.to_vec();
        for record in records {
            if record.id >= from {
                let hash = link(&prev, &record);
                sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE id = $3")
                    .bind(&prev)
                    .bind(&hash)
                    .bind(record.id)
                    .execute(pool)
                    .await
                    .unwrap();
                sqlx::query("UPDATE audit_head SET last_id = $1, hash = $2 WHERE id = 1")
                    .bind(record.id)
                    .bind(&hash)
                    .execute(pool)
                    .await
                    .unwrap();
                prev = hash;
            } else {
                let (hash,): (Vec<u8>,) = sqlx::query_as("SELECT hash FROM audit_events WHERE id = $1")
                    .bind(record.id)
                    .fetch_one(pool)
                    .await
                    .unwrap();
                prev = hash;
            }
        }
    });
}

#[tokio::test]
async fn the_keyed_chain_is_verified_against_an_anchor() {
    use app::audit_writer::AuditKey;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("audit.db").display());
    let out = behalf(&url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok: 0 audit records"), "{}", text(&out));
    // The key is created beside the database, for its owner only, and never in it.
    let key_file = dir.path().join("audit.db.audit-key");
    let key_text = std::fs::read_to_string(&key_file).expect("the key file is created");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    let out = behalf(&url, &["audit", "anchor"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nothing to anchor"), "{}", text(&out));

    // Records written with the same key, by the binary as the server would.
    let key = AuditKey::from_key_file(&key_text).unwrap();
    assert_eq!(key.keyed_from, 1, "a new chain is keyed from its first record");
    let db = app::db::Db::connect(&url).await.unwrap();
    let add_record = |n: usize| {
        let email = format!("chain{n}@example.com");
        let out = behalf(
            &url,
            &[
                "create-member",
                "--email",
                &email,
                "--password",
                "chain password 1",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    for n in 0..3 {
        add_record(n);
    }
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM server_secrets").await,
        0,
        "no key in the database"
    );
    let out = behalf(&url, &["audit", "verify"]);
    assert!(text(&out).contains("ok: 3 audit records"), "{}", text(&out));
    let out = behalf(&url, &["audit", "anchor"]);
    assert!(out.status.success(), "{}", text(&out));
    let anchor = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(anchor.starts_with("3:") && anchor.len() == 2 + 64, "{anchor}");
    add_record(3);
    let out = behalf(&url, &["audit", "verify", "--anchor", &anchor]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ok: 4 audit records") && text(&out).contains("matches the anchor"),
        "{}",
        text(&out)
    );

    // Someone with write access but not the key edits record 2 and recomputes the chain:
    // the keyed links give it away.
    with_db!(&db, pool => sqlx::query("UPDATE audit_events SET details = '{\"edited\":true}' WHERE id = 2").execute(pool).await.unwrap().rows_affected());
    rehash_from(&db, 2, &AuditKey::generate()).await;
    let out = behalf(&url, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("broken at record 2"), "{}", text(&out));

    // Nor can they pass the records off as older than the key: the first keyed record
    // is the key file's to say, not the database's.
    rehash_with(&db, 1, app::audit_writer::unkeyed_hash).await;
    with_db!(&db, pool => sqlx::query("UPDATE audit_head SET keyed_from = 5").execute(pool).await.unwrap().rows_affected());
    let out = behalf(&url, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("passed off as older than the key"),
        "{}",
        text(&out)
    );
    with_db!(&db, pool => sqlx::query("UPDATE audit_head SET keyed_from = 1").execute(pool).await.unwrap().rows_affected());

    // Someone who also holds the key recomputes it so that it verifies: only the anchor,
    // kept elsewhere, shows that the history before it changed.
    rehash_from(&db, 1, &key).await;
    let out = behalf(&url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = behalf(&url, &["audit", "verify", "--anchor", &anchor]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("broken at record 3") && text(&out).contains("anchor"),
        "{}",
        text(&out)
    );
    // An anchor past the end (records removed from the end) is refused too.
    let beyond = format!("9{}", &anchor[1..]);
    let out = behalf(&url, &["audit", "verify", "--anchor", &beyond]);
    assert!(!out.status.success());
    assert!(text(&out).contains("chain ends at record 4"), "{}", text(&out));
    db.close().await;

    // Without its key file, a keyed chain is not silently given a new key.
    std::fs::remove_file(&key_file).unwrap();
    let out = behalf(&url, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("audit key file") && text(&out).contains("missing"),
        "{}",
        text(&out)
    );
    assert!(!key_file.exists(), "no new key is made for a keyed chain");
    // Another key than the chain's is refused before anything is written with it.
    let out = Command::new(env!("CARGO_BIN_EXE_behalf"))
        .args(["audit", "verify"])
        .env("BEHALF_DATABASE_URL", &url)
        .env("BEHALF_AUDIT_KEY", "another passphrase, long enough to be taken")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("another key"), "{}", text(&out));
    // The chain's own key given as 64 hex digits is accepted.
    let out = Command::new(env!("CARGO_BIN_EXE_behalf"))
        .args(["audit", "verify"])
        .env("BEHALF_DATABASE_URL", &url)
        .env("BEHALF_AUDIT_KEY", key.to_hex())
        .output()
        .unwrap();
    assert!(!text(&out).contains("another key"), "{}", text(&out));
    // A configured secret that is too short is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_behalf"))
        .args(["audit", "verify"])
        .env("BEHALF_DATABASE_URL", &url)
        .env("BEHALF_AUDIT_KEY", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("at least 32 characters"), "{}", text(&out));
}
