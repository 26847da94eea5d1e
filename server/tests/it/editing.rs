//! Step 2's changes over HTTP: who may read and change members and groups, the rank
//! rules, proxy login permission validation, and the audit record each change (or
//! refusal) writes.

use crate::common::{Backend, TestApp};
use app::members::Role;
use reqwest::{Client, StatusCode};
use serde_json::Value;

on_both_databases!(
    every_server_function_refuses_strangers_members_and_support_engineers_changing_things,
    editors_edit_members_up_to_their_rank_and_never_raise_anyone_above_it,
    proxy_login_permission_is_validated_and_a_rejected_save_changes_nothing,
    each_member_change_writes_one_audit_record_with_before_and_after,
    groups_are_created_renamed_filled_and_deleted_with_one_record_each,
    the_last_super_user_cannot_lock_everyone_out,
    the_blade_has_its_own_address,
);

/// The member editor's form for `id`, as the browser sends it, with `changes` applied.
fn edit_form(id: i64, fields: &[(&'static str, String)]) -> Vec<(String, String)> {
    let mut form = vec![("id".to_string(), id.to_string())];
    for (key, value) in fields {
        form.push((format!("edit[{key}]"), value.clone()));
    }
    form
}

async fn current_edit(app: &TestApp, client: &Client, id: i64) -> Vec<(&'static str, String)> {
    let (status, detail) = app
        .post(client, "/api/members/get", &[("id", &id.to_string())])
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let m = &detail["member"];
    let ids = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_i64().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        ("display_name", m["display_name"].as_str().unwrap().to_string()),
        ("email", m["email"].as_str().unwrap().to_string()),
        ("role", m["role"].as_str().unwrap().to_string()),
        ("admin_access", m["admin_access"].to_string()),
        ("login_enabled", m["login_enabled"].to_string()),
        ("groups", ids(&m["groups"])),
        ("proxy_login_permission", ids(&detail["proxy_login_permission"])),
    ]
}

fn with(mut fields: Vec<(&'static str, String)>, key: &str, value: &str) -> Vec<(&'static str, String)> {
    for field in fields.iter_mut() {
        if field.0 == key {
            field.1 = value.to_string();
        }
    }
    fields
}

async fn update(
    app: &TestApp,
    client: &Client,
    id: i64,
    fields: &[(&'static str, String)],
) -> (StatusCode, Value) {
    let form = edit_form(id, fields);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.post(client, "/api/members/update", &form).await
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
    ))
    .await
}

async fn every_server_function_refuses_strangers_members_and_support_engineers_changing_things(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ed = app
        .create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let editor = app.signed_in("ed@example.com").await;
    let (_, group) = app.post(&editor, "/api/groups/create", &[("name", "Acme")]).await;
    let gid = group["id"].as_i64().unwrap().to_string();
    let (ann_id, ed_id) = (ann.to_string(), ed.to_string());

    let reads: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/members/list", vec![]),
        ("/api/members/get", vec![("id", &ann_id)]),
        ("/api/members/lookup", vec![("ids", &ed_id)]),
        ("/api/groups/list", vec![]),
        ("/api/groups/get", vec![("id", &gid)]),
    ];
    let edit = edit_form(ann, &current_edit(&app, &editor, ann).await);
    let edit: Vec<(&str, &str)> = edit.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let writes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/members/update", edit.clone()),
        ("/api/groups/create", vec![("name", "Other")]),
        ("/api/groups/rename", vec![("id", &gid), ("name", "Renamed")]),
        (
            "/api/groups/add-member",
            vec![("group_id", &gid), ("member_id", &ann_id)],
        ),
        (
            "/api/groups/remove-member",
            vec![("group_id", &gid), ("member_id", &ann_id)],
        ),
        ("/api/groups/delete", vec![("id", &gid)]),
    ];
    let stranger = app.client();
    let member = app.signed_in("ann@example.com").await;
    let support = app.signed_in("sam@example.com").await;
    for (path, form) in reads.iter().chain(writes.iter()) {
        let (status, body) = app.post(&stranger, path, form).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{path} without a session: {body}"
        );
        let (status, body) = app.post(&member, path, form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} by a member: {body}");
    }
    for (path, form) in &reads {
        let (status, body) = app.post(&support, path, form).await;
        assert_eq!(status, StatusCode::OK, "{path} read by support: {body}");
    }
    let refused_before =
        audit_count(&app, "member_update_refused").await + audit_count(&app, "group_change_refused").await;
    for (path, form) in &writes {
        let (status, body) = app.post(&support, path, form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} by support: {body}");
        assert!(body.to_string().contains("editors and super users"), "{body}");
    }
    // Nothing changed; each refusal by a signed-in member was recorded as a refusal.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM groups").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM group_members").await, 0);
    assert_eq!(audit_count(&app, "member_updated").await, 0);
    // Identical refusals within a minute are folded (Step 8): the four refused changes
    // to the one group, all `group_change_refused` for the same reason, are one record
    // until the minute is over, then one more with the count of the other three.
    let refused =
        audit_count(&app, "member_update_refused").await + audit_count(&app, "group_change_refused").await;
    assert_eq!(refused - refused_before, 3);
    app.clock.advance(app::audit_writer::FOLD_WINDOW);
    app::audit_writer::flush_folded(&app.state.db, &app.state.refusals, app.clock.now(), false)
        .await
        .unwrap();
    // (The member's four refused group changes above were folded the same way.)
    let refused =
        audit_count(&app, "member_update_refused").await + audit_count(&app, "group_change_refused").await;
    assert_eq!(refused - refused_before, 5);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'group_change_refused' AND details LIKE '%\"repeats\":3%'")
            .await,
        2
    );
    // Mutations are POST only.
    let get = editor
        .get(app.url("/api/groups/create?name=x"))
        .send()
        .await
        .unwrap();
    assert!(get.status().is_client_error(), "{}", get.status());
    app.finish().await;
}

async fn editors_edit_members_up_to_their_rank_and_never_raise_anyone_above_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let boss = app
        .create_member("boss@example.com", "Boss Root", Role::SuperUser)
        .await;
    app.create_member("root2@example.com", "Second Root", Role::SuperUser)
        .await;
    let ed = app
        .create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let editor = app.signed_in("ed@example.com").await;

    // The blade says what the editor may do.
    let (_, detail) = app
        .post(&editor, "/api/members/get", &[("id", &boss.to_string())])
        .await;
    assert_eq!(detail["can_edit"], false);
    let (_, detail) = app
        .post(&editor, "/api/members/get", &[("id", &ann.to_string())])
        .await;
    assert_eq!(detail["can_edit"], true);
    assert_eq!(
        detail["assignable_roles"],
        serde_json::json!(["member", "support", "editor"])
    );

    // A super user cannot be edited by an editor, even harmlessly.
    let fields = current_edit(&app, &editor, boss).await;
    let (status, body) = update(&app, &editor, boss, &with(fields, "display_name", "Hacked")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Nobody is raised above the editor's rank: not a member, not the editor.
    let fields = current_edit(&app, &editor, ann).await;
    let (status, body) = update(&app, &editor, ann, &with(fields, "role", "super_user")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let fields = current_edit(&app, &editor, ed).await;
    let (status, _) = update(&app, &editor, ed, &with(fields.clone(), "role", "super_user")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM members WHERE role = 'super_user'")
            .await,
        2
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM members WHERE display_name = 'Hacked'")
            .await,
        0
    );
    assert_eq!(audit_count(&app, "member_update_refused").await, 3);
    assert_eq!(audit_count(&app, "member_updated").await, 0);
    // Up to their own rank is fine: make Ann an editor.
    let fields = current_edit(&app, &editor, ann).await;
    let (status, body) = update(&app, &editor, ann, &with(fields, "role", "editor")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["member"]["role"], "editor");
    // An unknown role is a validation error on the role field.
    let fields = current_edit(&app, &editor, ann).await;
    let (status, body) = update(&app, &editor, ann, &with(fields, "role", "god")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "role", "{body}");
    // A super user may edit another super user.
    let root = app.signed_in("boss@example.com").await;
    let fields = current_edit(&app, &root, boss).await;
    let (status, _) = update(&app, &root, boss, &with(fields, "display_name", "Boss Renamed")).await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

async fn proxy_login_permission_is_validated_and_a_rejected_save_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    app.create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let editor = app.signed_in("ed@example.com").await;
    let fields = current_edit(&app, &editor, ann).await;
    let records = app.scalar("SELECT COUNT(*) FROM audit_events").await;

    let cases = [
        ("999999".to_string(), "No member has the ID 999999."),
        (ann.to_string(), "is this member"),
        (format!("{sam}, {sam}"), "listed twice"),
        ("sam".to_string(), "not a member ID"),
        ("-3".to_string(), "not a member ID"),
    ];
    for (value, message) in &cases {
        // Change the name too: a rejected save must not keep any of it.
        let edit = with(
            with(fields.clone(), "proxy_login_permission", value),
            "display_name",
            "Changed",
        );
        let (status, body) = update(&app, &editor, ann, &edit).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{value}: {body}");
        assert_eq!(body["error"]["field"], "proxy_login_permission", "{body}");
        assert!(body.to_string().contains(message), "{value}: {body}");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM proxy_permissions").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM members WHERE display_name = 'Changed'")
            .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events").await,
        records,
        "validation errors write nothing"
    );

    // Other fields' errors name their field.
    for (key, value, field) in [
        ("email", "not-an-email", "email"),
        ("display_name", "  ", "display_name"),
        ("groups", "12345", "groups"),
    ] {
        let (status, body) = update(&app, &editor, ann, &with(fields.clone(), key, value)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    // An email another member uses is refused next to the email field.
    let (status, body) = update(
        &app,
        &editor,
        ann,
        &with(fields.clone(), "email", "SAM@example.com"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "email");

    // A valid permission is saved and named back.
    let (status, body) = update(
        &app,
        &editor,
        ann,
        &with(fields.clone(), "proxy_login_permission", &format!(" #{sam} ")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["proxy_login_permission"][0]["display_name"], "Sam Ortiz");
    let (status, body) = app
        .post(
            &editor,
            "/api/members/lookup",
            &[("ids", &format!("{sam}, 424242"))],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["display_name"], "Sam Ortiz");
    assert_eq!(body[1]["display_name"], Value::Null);
    let (status, _) = app.post(&editor, "/api/members/lookup", &[("ids", "1,1")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}

async fn each_member_change_writes_one_audit_record_with_before_and_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ed = app
        .create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let editor = app.signed_in("ed@example.com").await;
    let (_, group) = app.post(&editor, "/api/groups/create", &[("name", "Acme")]).await;
    let gid = group["id"].as_i64().unwrap();
    let fields = current_edit(&app, &editor, ann).await;

    let before = audit_count(&app, "member_updated").await;
    // Saving without changes writes nothing.
    let (status, _) = update(&app, &editor, ann, &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit_count(&app, "member_updated").await, before);

    let edit = with(
        with(
            with(
                with(fields, "display_name", "Ann Lee-Smith"),
                "proxy_login_permission",
                &sam.to_string(),
            ),
            "groups",
            &gid.to_string(),
        ),
        "login_enabled",
        "false",
    );
    let (status, body) = update(&app, &editor, ann, &edit).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["member"]["display_name"], "Ann Lee-Smith");
    assert_eq!(body["member"]["groups"][0]["name"], "Acme");
    assert_eq!(audit_count(&app, "member_updated").await, before + 1);
    let (actor, subject, details): (Option<i64>, Option<i64>, String) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT actor_id, subject_id, details FROM audit_events WHERE action = 'member_updated'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!((actor, subject), (Some(ed), Some(ann)));
    let details: Value = serde_json::from_str(&details).unwrap();
    let changes = &details["changes"];
    assert_eq!(changes["display_name"]["before"], "Ann Lee");
    assert_eq!(changes["display_name"]["after"], "Ann Lee-Smith");
    assert_eq!(changes["login_enabled"]["after"], false);
    assert_eq!(
        changes["proxy_login_permission"]["after"],
        serde_json::json!([sam])
    );
    assert_eq!(changes["groups"]["before"], serde_json::json!([]));
    assert!(changes.get("email").is_none(), "unchanged fields are left out");
    assert!(!details.to_string().contains("argon2"), "never a password hash");
    assert_eq!(
        app.scalar(&format!("SELECT member_count FROM groups WHERE id = {gid}"))
            .await,
        1
    );
    // The list shows the change, with the group.
    let (_, page) = app.post(&editor, "/api/members/list", &[("q", "ann lee-")]).await;
    assert_eq!(page["members"][0]["display_name"], "Ann Lee-Smith");
    let (_, page) = app
        .post(&editor, "/api/members/list", &[("group", &gid.to_string())])
        .await;
    assert_eq!(page["total"], 1);
    // The chain still verifies.
    assert_eq!(
        app::audit::verify::verify(&app.state.db).await.unwrap(),
        app::audit::verify::Verdict::Intact {
            records: app.scalar("SELECT COUNT(*) FROM audit_events").await
        }
    );
    app.finish().await;
}

async fn groups_are_created_renamed_filled_and_deleted_with_one_record_each(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let boss = app
        .create_member("boss@example.com", "Boss Root", Role::SuperUser)
        .await;
    app.create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let editor = app.signed_in("ed@example.com").await;
    let records = || app.scalar("SELECT COUNT(*) FROM audit_events WHERE action LIKE 'group%'");

    let (status, group) = app
        .post(&editor, "/api/groups/create", &[("name", "  Acme Retail ")])
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["name"], "Acme Retail");
    let gid = group["id"].as_i64().unwrap().to_string();
    assert_eq!(records().await, 1);
    for (name, field) in [
        ("ACME retail", "name"),
        ("", "name"),
        (&"x".repeat(81)[..], "name"),
    ] {
        let (status, body) = app.post(&editor, "/api/groups/create", &[("name", name)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(body["error"]["field"], field);
    }
    assert_eq!(records().await, 1, "refused creations write nothing");

    let (status, _) = app
        .post(
            &editor,
            "/api/groups/rename",
            &[("id", &gid), ("name", "Acme Stores")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            &editor,
            "/api/groups/add-member",
            &[("group_id", &gid), ("member_id", &ann.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            &editor,
            "/api/groups/add-member",
            &[("group_id", &gid), ("member_id", &ann.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // An editor cannot move a super user around.
    let (status, _) = app
        .post(
            &editor,
            "/api/groups/add-member",
            &[("group_id", &gid), ("member_id", &boss.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            &editor,
            "/api/groups/add-member",
            &[("group_id", &gid), ("member_id", "987654")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(records().await, 4, "create, rename, add, and one refusal");
    assert_eq!(audit_count(&app, "group_change_refused").await, 1);

    let (status, page) = app.post(&editor, "/api/groups/get", &[("id", &gid)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["group"]["name"], "Acme Stores");
    assert_eq!(page["group"]["member_count"], 1);
    assert_eq!(page["members"][0]["display_name"], "Ann Lee");
    let (status, list) = app.post(&editor, "/api/groups/list", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["groups"][0]["member_count"], 1);
    assert_eq!(list["can_edit"], true);

    let (status, _) = app
        .post(
            &editor,
            "/api/groups/remove-member",
            &[("group_id", &gid), ("member_id", &ann.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            &editor,
            "/api/groups/add-member",
            &[("group_id", &gid), ("member_id", &ann.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post(&editor, "/api/groups/delete", &[("id", &gid)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM groups").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM group_members").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM members").await,
        3,
        "members stay"
    );
    assert_eq!(records().await, 7);
    let (status, _) = app.post(&editor, "/api/groups/get", &[("id", &gid)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post(&editor, "/api/groups/delete", &[("id", &gid)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post(&editor, "/api/groups/get", &[("id", "abc")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.finish().await;
}

async fn the_last_super_user_cannot_lock_everyone_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let boss = app
        .create_member("boss@example.com", "Boss Root", Role::SuperUser)
        .await;
    let root = app.signed_in("boss@example.com").await;
    let fields = current_edit(&app, &root, boss).await;
    for (key, value) in [
        ("role", "editor"),
        ("admin_access", "false"),
        ("login_enabled", "false"),
    ] {
        let (status, body) = update(&app, &root, boss, &with(fields.clone(), key, value)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{key}: {body}");
    }
    assert_eq!(audit_count(&app, "member_updated").await, 0);
    app.create_member("root2@example.com", "Second Root", Role::SuperUser)
        .await;
    let (status, _) = update(&app, &root, boss, &with(fields, "role", "editor")).await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

async fn the_blade_has_its_own_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let support = app.signed_in("sam@example.com").await;
    let page = support
        .get(app.url(&format!("/admin/members/{ann}?q=ann")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("role=\"dialog\"") && html.contains("User information"),
        "{html}"
    );
    assert!(html.contains("ann@example.com"));
    assert!(
        html.contains("aria-label=\"Members\""),
        "the list is under the blade"
    );
    assert!(!html.contains(">Edit<"), "support engineers see no Edit");
    let missing = support
        .get(app.url("/admin/members/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("No member has the ID 999999."));
    let member = app.signed_in("ann@example.com").await;
    let page = member
        .get(app.url(&format!("/admin/members/{ann}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    app.finish().await;
}
