//! The first run a newcomer tries: `behalf serve` on a new database makes the first
//! super user and a small demo, prints the logins to try, and never touches a database
//! that has a member; `BEHALF_DEMO=0` or `--no-demo` start empty. Run with the real
//! binary, as `make run` does.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{
    common::Backend,
    served::{Database, Served},
};

on_both_databases!(
    a_new_database_gets_the_demo_and_its_logins_sign_in,
    a_database_with_a_member_is_never_touched,
    without_the_demo_a_new_database_stays_empty,
    two_instances_starting_at_once_make_one_demo,
);

const DEMO_PASSWORD: &str = "behalf-demo-password";

/// The email on the printed line that starts with `label` (after the indent).
fn login_on(printed: &str, label: &str) -> String {
    printed
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label} line in:\n{printed}"))
        .to_string()
}

async fn get(served: &Served, path: &str, token: &str) -> Value {
    let (status, body) = served.api(Method::GET, path, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn a_new_database_gets_the_demo_and_its_logins_sign_in(backend: Backend) {
    let Some(db) = Database::new(backend).await else {
        return;
    };
    let served = db.serve(&[], &[]);
    let printed = served.printed.clone();
    // The super user's credentials, as init-admin prints them, then the demo logins
    // and how to start without them.
    assert!(
        printed.contains("Created the first super user. Sign in with:"),
        "{printed}"
    );
    assert!(printed.contains("(Shown only this once.)"), "{printed}");
    let admin = login_on(&printed, "Email:");
    assert_eq!(admin, "admin@behalf.local");
    let admin_password = login_on(&printed, "Password:");
    let support = login_on(&printed, "Support engineer:");
    assert_eq!(support, "mila.levi4@example.com", "{printed}");
    let editor = login_on(&printed, "Editor:");
    let member = login_on(&printed, "Member:");
    assert!(printed.contains(DEMO_PASSWORD), "{printed}");
    assert!(
        printed.contains("BEHALF_DEMO=0") && printed.contains("--no-demo"),
        "{printed}"
    );

    let members = db.scalar("SELECT COUNT(*) FROM members").await;
    assert!((200..1_000).contains(&members), "{members} members");
    assert!(db.scalar("SELECT COUNT(*) FROM groups").await > 1);
    assert!(db.scalar("SELECT COUNT(*) FROM group_members").await > 100);
    assert!(db.scalar("SELECT COUNT(*) FROM proxy_permissions").await >= 10);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM products").await, 6);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
            .await,
        0,
        "the demo's sessions are all over"
    );

    // Every demo login signs in.
    let admin_token = served.api_login(&admin, &admin_password).await;
    for email in [&support, &editor] {
        served.api_login(email, DEMO_PASSWORD).await;
    }
    let member_token = served.api_login(&member, DEMO_PASSWORD).await;

    // The member's Access history and orders are not empty: two sessions on their
    // behalf (one left, one ended by the super user), and one order placed on behalf.
    let history = get(&served, "/api/v1/access_history", &member_token).await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    let orders = get(&served, "/api/v1/orders", &member_token).await;
    let orders = orders.as_array().unwrap();
    assert_eq!(orders.len(), 3, "{orders:?}");
    assert_eq!(orders.iter().filter(|o| o["placed_by"].is_string()).count(), 1);
    // Nor is the audit viewer: the starts, the order on behalf, the ends.
    let audit = get(&served, "/api/v1/audit", &admin_token).await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "on_behalf_start",
        "on_behalf_end",
        "order_placed",
        "member_updated",
        "members_seeded",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    drop(served);
    assert!(db.verify_ok().contains("ok: "));

    // Started again, the database is no longer new: nothing more is made or printed.
    let again = db.serve(&[], &[]);
    assert_eq!(again.printed.trim(), "", "{}", again.printed);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM members").await, members);
    drop(again);
    db.finish().await;
}

async fn a_database_with_a_member_is_never_touched(backend: Backend) {
    let Some(db) = Database::new(backend).await else {
        return;
    };
    let out = db.behalf(&[
        "create-member",
        "--email",
        "ann@example.com",
        "--password",
        "long enough",
    ]);
    assert!(out.status.success(), "{}", crate::served::text(&out));
    let records = db.scalar("SELECT COUNT(*) FROM audit_events").await;
    let served = db.serve(&[], &[]);
    assert_eq!(
        served.printed.trim(),
        "",
        "nothing about a demo: {}",
        served.printed
    );
    drop(served);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM members").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM products").await, 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM audit_events").await, records);
    db.finish().await;
}

async fn without_the_demo_a_new_database_stays_empty(backend: Backend) {
    let Some(db) = Database::new(backend).await else {
        return;
    };
    for (env, args) in [
        (vec![("BEHALF_DEMO", "0")], vec![]),
        (vec![("BEHALF_DEMO", "off")], vec![]),
        (vec![], vec!["--no-demo"]),
    ] {
        let served = db.serve(&env, &args);
        assert_eq!(served.printed.trim(), "", "{env:?} {args:?}: {}", served.printed);
        // It serves all the same.
        let (status, _) = served.api(Method::GET, "/healthz", None, None).await;
        assert_eq!(status, StatusCode::OK);
        drop(served);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM members").await,
            0,
            "{env:?} {args:?}"
        );
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM audit_events").await, 0);
    db.finish().await;
}

/// Two instances on one new database at once (after `behalf migrate`, as for several
/// instances): one makes the first super user and the demo, the other sees it.
async fn two_instances_starting_at_once_make_one_demo(backend: Backend) {
    let Some(db) = Database::new(backend).await else {
        return;
    };
    let out = db.behalf(&["migrate"]);
    assert!(out.status.success(), "{}", crate::served::text(&out));
    let (a, b) = (db.start_serving(&[], &[]), db.start_serving(&[], &[]));
    let (a, b) = (a.serving(), b.serving());
    let made: Vec<&Served> = [&a, &b]
        .into_iter()
        .filter(|s| s.printed.contains("Created the first super user"))
        .collect();
    assert_eq!(made.len(), 1, "one demo:\nA:\n{}\nB:\n{}", a.printed, b.printed);
    let other = if made[0].base == a.base { &b } else { &a };
    assert_eq!(other.printed.trim(), "", "{}", other.printed);
    drop((a, b));
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM members WHERE role = 'super_user' AND email_key = 'admin@behalf.local'"
        )
        .await,
        1
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'members_seeded'")
            .await,
        1
    );
    db.verify_ok();
    db.finish().await;
}
