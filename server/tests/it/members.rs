//! The members list over HTTP: who may see it, how it searches, sorts and pages.

use crate::common::{Backend, TestApp, PASSWORD};
use app::members::Role;
use reqwest::{header, StatusCode};
use serde_json::Value;

on_both_databases!(
    every_way_of_reading_the_list_gives_the_same_pages,
    only_members_with_admin_access_may_list_members,
    search_matches_id_exactly_and_name_or_email_by_prefix_literally,
    sorting_filtering_and_paging_work_and_bad_parameters_are_refused,
    a_bulk_seed_writes_the_same_search_terms_as_the_application,
);

/// A large seed into an empty database writes the search terms in one SQL statement;
/// they must be exactly the terms the application writes for a member.
async fn a_bulk_seed_writes_the_same_search_terms_as_the_application(backend: Backend) {
    use std::collections::BTreeSet;

    let app = TestApp::spawn(backend).await;
    let db = &app.state.db;
    // What the seed drops for the bulk load and must put back: indexes and foreign keys.
    let schema_objects = || async {
        let sql = match backend {
            Backend::Sqlite => {
                "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'index') * 1000 \
                 + (SELECT COUNT(*) FROM pragma_foreign_key_list('member_terms')) \
                 + (SELECT COUNT(*) FROM pragma_foreign_key_list('group_members'))"
            }
            Backend::Postgres => {
                "SELECT (SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()) * 1000 \
                 + (SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' \
                    AND conrelid IN ('member_terms'::regclass, 'group_members'::regclass))"
            }
        };
        app.scalar(sql).await
    };
    let before = schema_objects().await;
    assert!(
        before % 1000 >= 3,
        "the terms' and memberships' foreign keys: {before}"
    );
    // 20,000 is where the seed starts deferring indexes and filling terms in bulk.
    server::seed::insert_members(db, 3, 20_000, "$argon2id$unused", |_| {})
        .await
        .unwrap();
    assert_eq!(
        schema_objects().await,
        before,
        "every index and foreign key is back"
    );
    type Member = (i64, String, String, i64, i64);
    type Term = (i64, String, String, String, i64, i64);
    let (members, stored): (Vec<Member>, Vec<Term>) = with_db!(db, pool => {
        (
            sqlx::query_as("SELECT id, name_key, email_key, role_rank, sign_in_key FROM members")
                .fetch_all(pool)
                .await
                .unwrap(),
            sqlx::query_as(
                "SELECT member_id, term, name_key, email_key, role_rank, sign_in_key FROM member_terms",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        )
    });
    assert_eq!(members.len(), 20_000);
    let expected: BTreeSet<Term> = members
        .iter()
        .flat_map(|(id, name, email, rank, sign_in)| {
            app::members::directory::search_terms(name, email)
                .into_iter()
                .map(move |term| (*id, term, name.clone(), email.clone(), *rank, *sign_in))
        })
        .collect();
    let stored: BTreeSet<_> = stored.into_iter().collect();
    assert!(expected.len() >= 40_000, "a name and an email each at least");
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "bulk terms differ from the application's");
    app.finish().await;
}

async fn list(app: &TestApp, client: &reqwest::Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client
        .post(app.url("/api/members/list"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn names(page: &Value) -> Vec<String> {
    page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display_name"].as_str().unwrap().to_string())
        .collect()
}

async fn only_members_with_admin_access_may_list_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    app.create_member("bob@example.com", "Bob Stone", Role::Member)
        .await;

    let (status, _) = list(&app, &app.client(), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no session");
    let member = app.signed_in("ann@example.com").await;
    let (status, body) = list(&app, &member, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let support = app.signed_in("sam@example.com").await;
    let (status, body) = list(&app, &support, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 3);

    // The page itself: 403 for a member, the table for support, sign-in for strangers.
    let page = member.get(app.url("/admin/members")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains("Not allowed"));
    let page = support.get(app.url("/admin/members?q=ann")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("aria-label=\"Members\""));
    assert!(
        html.contains("ann@example.com") && !html.contains("bob@example.com"),
        "only the matches are listed"
    );
    let page = app
        .client()
        .get(app.url("/admin/members"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FOUND);
    assert_eq!(
        page.headers().get(header::LOCATION).unwrap(),
        "/login?next=/admin/members"
    );
    app.finish().await;
}

async fn search_matches_id_exactly_and_name_or_email_by_prefix_literally(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("admin@example.com", "Ada Admin", Role::SuperUser)
        .await;
    let ann = app
        .create_member("ann.lee@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("annika@example.org", "Annika Berg", Role::Member)
        .await;
    app.create_member("elodie@exemple.fr", "Élodie Dubois", Role::Member)
        .await;
    app.create_member("pct@example.com", "50%_off O'Brien", Role::Member)
        .await;
    app.create_member("fifty@example.com", "50 Cent", Role::Member)
        .await;
    let admin = app.signed_in("admin@example.com").await;

    let search = |q: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let (status, page) = list(app, admin, &[("q", q)]).await;
            assert_eq!(status, StatusCode::OK, "{q}: {page}");
            let mut found = names(&page);
            found.sort();
            found
        }
    };
    assert_eq!(
        search("ann").await,
        vec!["Ann Lee", "Annika Berg"],
        "name prefix, case-insensitive"
    );
    assert_eq!(search("ANN.LEE@").await, vec!["Ann Lee"], "email prefix");
    assert_eq!(search("élodie").await, vec!["Élodie Dubois"], "non-ASCII");
    assert_eq!(
        search("ÉLODIE").await,
        vec!["Élodie Dubois"],
        "non-ASCII, any case"
    );
    assert_eq!(
        search(Box::leak(ann.to_string().into_boxed_str())).await,
        vec!["Ann Lee"],
        "ID exactly"
    );
    assert_eq!(
        search("50%").await,
        vec!["50%_off O'Brien"],
        "% is a plain character"
    );
    assert_eq!(
        search("50%_").await,
        vec!["50%_off O'Brien"],
        "_ is a plain character"
    );
    assert_eq!(
        search("50 ").await,
        vec!["50 Cent", "50%_off O'Brien"],
        "the search is trimmed"
    );
    assert_eq!(search("50 c").await, vec!["50 Cent"]);
    assert_eq!(
        search("50%_off o'b").await,
        vec!["50%_off O'Brien"],
        "quotes are plain characters"
    );
    assert!(search("' OR '1'='1").await.is_empty());
    assert!(search("%").await.is_empty());
    assert!(search("_").await.is_empty());
    assert_eq!(search("").await.len(), 6);
    app.finish().await;
}

async fn sorting_filtering_and_paging_work_and_bad_parameters_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("admin@example.com", "Zed Admin", Role::SuperUser)
        .await;
    server::seed::insert_members(&app.state.db, 3, 120, "$argon2id$unused", |_| {})
        .await
        .unwrap();
    let admin = app.signed_in("admin@example.com").await;

    let (_, first) = list(&app, &admin, &[]).await;
    assert_eq!(first["total"], 121);
    assert_eq!(first["members"].as_array().unwrap().len(), 25);
    let by_name = names(&first);
    let mut sorted = by_name.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(by_name, sorted, "sorted by name by default");

    // Page forward by cursor to the end, then back.
    let mut pages = vec![first.clone()];
    while let Some(after) = pages.last().unwrap()["next"].as_i64() {
        let page_number = (pages.len() + 1).to_string();
        let (status, page) = list(
            &app,
            &admin,
            &[("page", page_number.as_str()), ("after", &after.to_string())],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        pages.push(page);
    }
    assert_eq!(pages.len(), 5);
    assert_eq!(
        pages[4]["members"].as_array().unwrap().len(),
        21,
        "121 = 4 × 25 + 21"
    );
    let walked: Vec<String> = pages.iter().flat_map(names).collect();
    let mut sorted = walked.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(walked.len(), 121);
    assert_eq!(walked, sorted, "pages continue each other in order");
    let before = pages[4]["previous"].as_i64().unwrap().to_string();
    let (_, back) = list(&app, &admin, &[("page", "4"), ("before", before.as_str())]).await;
    assert_eq!(
        back["members"], pages[3]["members"],
        "Previous shows the same page again"
    );
    assert_eq!(back["next"], pages[3]["next"]);
    // Bad cursors are refused; a cursor naming nobody starts from the top.
    let (status, body) = list(&app, &admin, &[("after", "x")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "after");
    let (status, _) = list(&app, &admin, &[("after", "3"), ("before", "4")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, unknown) = list(&app, &admin, &[("after", "999999")]).await;
    assert_eq!(unknown["members"], first["members"]);
    let (_, clamped) = list(&app, &admin, &[("page", "-3")]).await;
    assert_eq!(clamped["query"]["page"], 1);

    let (_, desc) = list(&app, &admin, &[("sort", "id"), ("dir", "desc")]).await;
    let ids: Vec<i64> = desc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids[0], 121);
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    let (_, supers) = list(&app, &admin, &[("role", "super_user")]).await;
    assert!(supers["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["role"] == "super_user"));
    assert!(
        supers["total"].as_i64().unwrap() >= 2,
        "the admin and the seeded super user"
    );

    let (_, by_role) = list(&app, &admin, &[("sort", "role"), ("dir", "desc")]).await;
    assert_eq!(by_role["members"][0]["role"], "super_user");

    for (form, field) in [
        (vec![("sort", "password_hash")], "sort"),
        (vec![("dir", "up")], "dir"),
        (vec![("role", "god")], "role"),
    ] {
        let (status, body) = list(&app, &admin, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert_eq!(body["error"]["field"], field);
    }
    let long = "x".repeat(101);
    let (status, _) = list(&app, &admin, &[("q", long.as_str())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = list(&app, &admin, &[("page", "two")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a page that is not a number");
    app.finish().await;
}

/// The list reads a search in several ways (fetch and sort; an index range; a bucket
/// index; a walk of the sort's index), chosen by size. Forcing each way must give the
/// same members in the same order, page after page, forwards and backwards.
async fn every_way_of_reading_the_list_gives_the_same_pages(backend: Backend) {
    use app::members::{search::list_with_threshold, ListParams, ListQuery, SortKey};

    let app = TestApp::spawn(backend).await;
    server::seed::insert_members(&app.state.db, 5, 260, "$argon2id$unused", |_| {})
        .await
        .unwrap();
    app.create_member("maria@example.com", "Maria de la Cruz", Role::Editor)
        .await;
    app.create_member("lee.ann@example.com", "Lee Ann Marsh", Role::Member)
        .await;
    // A sign-in moves a member in the last-sign-in order: the search terms' copy of
    // that key must follow (the walks read it, the fetches read the member).
    let client = app.client();
    assert_eq!(
        app.login(&client, "maria@example.com", PASSWORD).await.status(),
        200
    );
    let db = &app.state.db;

    async fn walk(db: &app::db::Db, first: ListQuery, threshold: i64) -> (Vec<i64>, Vec<i64>) {
        let mut forward = Vec::new();
        let mut query = first.clone();
        let mut last_page;
        loop {
            let page = list_with_threshold(db, query.clone(), threshold).await.unwrap();
            assert!(page.members.len() <= 25);
            forward.extend(page.members.iter().map(|m| m.id));
            last_page = page.clone();
            match page.next {
                Some(after) => {
                    query = ListQuery {
                        after: Some(after),
                        before: None,
                        page: query.page + 1,
                        ..query
                    }
                }
                None => break,
            }
        }
        // And back from the last page.
        let mut backward: Vec<i64> = last_page.members.iter().rev().map(|m| m.id).collect();
        let mut previous = last_page.previous;
        while let Some(before) = previous {
            let page = list_with_threshold(
                db,
                ListQuery {
                    after: None,
                    before: Some(before),
                    ..first.clone()
                },
                threshold,
            )
            .await
            .unwrap();
            backward.extend(page.members.iter().rev().map(|m| m.id));
            previous = page.previous;
        }
        backward.reverse();
        (forward, backward)
    }

    let mut checked = 0;
    for q in [
        "", "an", "ma", "lee", "ann", "maria.", "la c", "de", "1", "12", "zz",
    ] {
        for sort in SortKey::ALL {
            for dir in ["asc", "desc"] {
                for (role, group) in [(None, None), (Some("member"), None), (None, Some("2"))] {
                    let query = ListQuery::parse(&ListParams {
                        q: Some(q.to_string()),
                        role: role.map(str::to_string),
                        group: group.map(str::to_string),
                        sort: Some(sort.as_str().to_string()),
                        dir: Some(dir.to_string()),
                        ..ListParams::default()
                    })
                    .unwrap();
                    let (fetched, fetched_back) = walk(db, query.clone(), i64::MAX).await;
                    let (streamed, streamed_back) = walk(db, query.clone(), 0).await;
                    assert_eq!(fetched, streamed, "{q:?} {sort:?} {dir} {role:?} {group:?}");
                    assert_eq!(fetched, fetched_back, "backwards: {q:?} {sort:?} {dir}");
                    assert_eq!(
                        streamed, streamed_back,
                        "backwards, streamed: {q:?} {sort:?} {dir}"
                    );
                    // Both ways count the same (exactly: every search here has fewer
                    // than 2,000 matches), and the count is the number of rows paged.
                    let first_fetched = list_with_threshold(db, query.clone(), i64::MAX).await.unwrap();
                    let first_streamed = list_with_threshold(db, query.clone(), 0).await.unwrap();
                    assert_eq!(
                        (first_fetched.total, first_fetched.more),
                        (first_streamed.total, first_streamed.more),
                        "count: {q:?} {sort:?} {dir} {role:?} {group:?}"
                    );
                    assert_eq!(
                        first_fetched.total as usize,
                        fetched.len(),
                        "count: {q:?} {role:?} {group:?}"
                    );
                    let unique: std::collections::BTreeSet<_> = fetched.iter().collect();
                    assert_eq!(unique.len(), fetched.len(), "no member twice");
                    checked += fetched.len();
                }
            }
        }
    }
    assert!(checked > 5_000, "{checked}");
    // Later words count: "la c" finds Maria de la Cruz; "ann" finds Lee Ann Marsh.
    let query = ListQuery::parse(&ListParams {
        q: Some("la c".into()),
        ..ListParams::default()
    })
    .unwrap();
    let page = list_with_threshold(db, query, 0).await.unwrap();
    assert!(page.members.iter().any(|m| m.display_name == "Maria de la Cruz"));
    let query = ListQuery::parse(&ListParams {
        q: Some("ann".into()),
        ..ListParams::default()
    })
    .unwrap();
    let page = list_with_threshold(db, query, 0).await.unwrap();
    assert!(page.members.iter().any(|m| m.display_name == "Lee Ann Marsh"));
    app.finish().await;
}
