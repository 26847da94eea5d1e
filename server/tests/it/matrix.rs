//! The security matrix (Step 8): every server function, API operation and other route,
//! enumerated from the running registry and the OpenAPI document so that a new one
//! cannot be left out, called as eight kinds of caller, against the allow/deny table
//! kept beside this file as data (`security_matrix.txt`).

use std::collections::BTreeSet;

use crate::common::{Backend, TestApp, PASSWORD};
use app::{
    clock::MINUTE,
    members::Role,
    mode::{Access, Mode},
    session::token::Token,
};
use reqwest::{header, Method, StatusCode};
use server::access::access_of;

on_both_databases!(
    every_route_answers_every_caller_as_the_matrix_says,
    protected_pages_are_refused_on_behalf_in_both_modes
);

const CALLERS: [&str; 9] = [
    "none",
    "member",
    "support",
    "editor",
    "view",
    "act",
    "expired",
    "revoked",
    "cross_site",
];

/// The routes outside the two registries (see `server::router::router`).
const OTHER_ROUTES: [(&str, &str); 6] = [
    ("GET", "/healthz"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/admin/audit.csv"),
    ("GET", "/one-click/{member_id}/{token}"),
    ("POST", "/one-click/{member_id}/{token}"),
    ("GET", "/api/on-behalf/events"),
];

struct Row {
    line: usize,
    method: String,
    path: String,
    params: Vec<(String, String)>,
    body: Option<String>,
    class: Access,
    expected: [bool; 9],
}

fn rows() -> Vec<Row> {
    include_str!("security_matrix.txt")
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(i, line)| {
            let parts: Vec<&str> = line.split(" | ").collect();
            assert_eq!(
                parts.len(),
                5,
                "line {}: METHOD PATH | params | body | class | outcomes",
                i + 1
            );
            let (method, path) = parts[0].split_once(' ').expect("METHOD PATH");
            let params = match parts[1].trim() {
                "-" => Vec::new(),
                text => text
                    .split(' ')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("name=value");
                        (k.to_string(), v.to_string())
                    })
                    .collect(),
            };
            let body = match parts[2].trim() {
                "-" => None,
                text => Some(text.to_string()),
            };
            let class = match parts[3].trim() {
                "read" => Access::Read,
                "write" => Access::Write,
                "protected" => Access::Protected,
                "session" => Access::Session,
                other => panic!("line {}: {other} is not read, write, protected or session", i + 1),
            };
            let marks: Vec<bool> = parts[4]
                .split_whitespace()
                .map(|m| match m {
                    "+" => true,
                    "-" => false,
                    other => panic!("line {}: {other} is neither + nor -", i + 1),
                })
                .collect();
            Row {
                line: i + 1,
                method: method.to_string(),
                path: path.trim().to_string(),
                params,
                body,
                class,
                expected: marks
                    .try_into()
                    .unwrap_or_else(|_| panic!("line {}: nine outcomes", i + 1)),
            }
        })
        .collect()
}

/// Every route the server has: its server functions (from their registry), its API
/// operations (from the OpenAPI document) and the few others.
fn registered() -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        all.insert((method.to_string(), path.to_string()));
    }
    let (_, document) = server::api::routes();
    let json = serde_json::to_value(&document).unwrap();
    for (path, item) in json["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            all.insert((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in OTHER_ROUTES {
        all.insert((method.to_string(), path.to_string()));
    }
    all
}

#[test]
fn the_matrix_names_every_route_and_no_other() {
    let table: BTreeSet<(String, String)> = rows()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let registered = registered();
    let missing: Vec<_> = registered.difference(&table).collect();
    let extra: Vec<_> = table.difference(&registered).collect();
    assert!(missing.is_empty(), "routes the matrix does not list: {missing:?}");
    assert!(extra.is_empty(), "rows for routes that do not exist: {extra:?}");
    assert_eq!(rows().len(), table.len(), "each route once");
    assert!(
        registered.len() > 60,
        "the registries were read: {}",
        registered.len()
    );
}

/// The class each row states is the one the request pipeline acts on.
#[test]
fn the_matrix_classes_are_the_pipelines() {
    let mut wrong = Vec::new();
    for row in rows() {
        let method = Method::from_bytes(row.method.as_bytes()).unwrap();
        let (class, _) = access_of(&method, &row.path, false);
        if class != row.class {
            wrong.push(format!(
                "line {}: {} {} is {class:?} in server/src/access.rs",
                row.line, row.method, row.path
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let listed = server::access::ROUTES.len();
    assert_eq!(
        listed,
        rows().len(),
        "server/src/access.rs lists every route once, as the matrix does"
    );
}

/// The people and things every row's requests name.
struct World {
    ann: i64,
    mia: i64,
    sam: i64,
    eve: i64,
    grp: i64,
}

/// A session row with a token of our own (no sign-in needed): `actor` makes it a
/// session on behalf, parked parent included; `expired` and `revoked` make it one
/// that no longer works.
async fn mint(app: &TestApp, member: i64, actor: Option<i64>, expired: bool, revoked: bool) -> (String, i64) {
    mint_in(
        app,
        member,
        actor.map(|actor| (actor, Mode::View)),
        expired,
        revoked,
    )
    .await
}

/// `mint`, with the session on behalf's actor and mode.
async fn mint_in(
    app: &TestApp,
    member: i64,
    on_behalf: Option<(i64, Mode)>,
    expired: bool,
    revoked: bool,
) -> (String, i64) {
    let actor = on_behalf.map(|(actor, _)| actor);
    let mode = on_behalf.map(|(_, mode)| mode.as_str());
    let now = app.clock.now();
    let token = Token::generate();
    let absolute = if expired { now - MINUTE } else { now + 30 * MINUTE };
    let (ended, reason) = if revoked {
        (Some(now), Some("revoked"))
    } else {
        (None, None)
    };
    let id = with_db!(&app.state.db, pool => {
        let parent: Option<i64> = match actor {
            None => None,
            Some(actor) => {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO sessions (token_hash, member_id, created_at, last_seen_at, idle_expires_at, \
                     absolute_expires_at) VALUES (NULL, $1, $2, $2, $3, $4) RETURNING id",
                )
                .bind(actor)
                .bind(now)
                .bind(now + 30 * MINUTE)
                .bind(now + 12 * 60 * MINUTE)
                .fetch_one(pool)
                .await
                .unwrap();
                Some(id)
            }
        };
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sessions (token_hash, member_id, actor_id, parent_id, reason, created_at, last_seen_at, \
             idle_expires_at, absolute_expires_at, ended_at, end_reason, mode) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $7, $8, $9, $10) RETURNING id",
        )
        .bind(token.hash())
        .bind(member)
        .bind(actor)
        .bind(parent)
        .bind(actor.map(|_| "Matrix check"))
        .bind(if expired { now - 2 * MINUTE } else { now })
        .bind(absolute)
        .bind(ended)
        .bind(reason)
        .bind(mode)
        .fetch_one(pool)
        .await
        .unwrap();
        id
    });
    (token.expose().to_string(), id)
}

fn fill(text: &str, world: &World, imp: i64, form: bool) -> String {
    text.replace("$ann", &world.ann.to_string())
        .replace("$mia", &world.mia.to_string())
        .replace("$sam", &world.sam.to_string())
        .replace("$eve", &world.eve.to_string())
        .replace("$grp", &world.grp.to_string())
        .replace("$imp", &imp.to_string())
        .replace(
            "$password",
            &if form {
                PASSWORD.replace(' ', "+")
            } else {
                PASSWORD.to_string()
            },
        )
        .replace("$token", &"A".repeat(43))
}

async fn every_route_answers_every_caller_as_the_matrix_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World {
        ann: app
            .create_member("ann@example.com", "Ann Lee", Role::Member)
            .await,
        mia: app
            .create_member("mia@example.com", "Mia Member", Role::Member)
            .await,
        sam: app
            .create_member("sam@example.com", "Sam Support", Role::Support)
            .await,
        eve: app
            .create_member("eve@example.com", "Eve Editor", Role::Editor)
            .await,
        grp: 0,
    };
    app.create_member("lou@example.com", "Lou Login", Role::Member)
        .await;
    let eve = app.api_login("eve@example.com").await;
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/groups",
            Some(&eve),
            Some(serde_json::json!({ "name": "Matrix group" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let world = World {
        grp: body["id"].as_i64().unwrap(),
        ..world
    };
    let client = app.bare_client();
    let mut wrong = Vec::new();
    for row in rows() {
        // Fresh sessions for every row: a row that signs out or ends one cannot change
        // what the next row sees.
        let (member, _) = mint(&app, world.mia, None, false, false).await;
        let (support, _) = mint(&app, world.sam, None, false, false).await;
        let (editor, _) = mint(&app, world.eve, None, false, false).await;
        let (viewing, imp) = mint_in(&app, world.ann, Some((world.sam, Mode::View)), false, false).await;
        let (acting, _) = mint_in(&app, world.ann, Some((world.sam, Mode::Act)), false, false).await;
        let (expired, _) = mint(&app, world.mia, None, true, false).await;
        let (revoked, _) = mint(&app, world.eve, None, false, true).await;
        let tokens = [
            None,
            Some(member),
            Some(support),
            Some(editor.clone()),
            Some(viewing),
            Some(acting),
            Some(expired),
            Some(revoked),
            Some(editor),
        ];
        let mut path = row.path.clone();
        for (name, value) in &row.params {
            path = path.replace(&format!("{{{name}}}"), &fill(value, &world, imp, false));
        }
        let api = path.starts_with("/api/v1/");
        for (i, caller) in CALLERS.iter().enumerate() {
            let method = Method::from_bytes(row.method.as_bytes()).unwrap();
            let mut request = client.request(method, app.url(&path));
            if let Some(token) = &tokens[i] {
                // API callers use the bearer token; a browser (and the cross-site
                // attacker riding one) sends the cookie.
                request = if api && *caller != "cross_site" {
                    request.bearer_auth(token)
                } else {
                    request.header(header::COOKIE, format!("behalf_session={token}"))
                };
            }
            if *caller == "cross_site" {
                request = request
                    .header(header::ORIGIN, "https://evil.example")
                    .header("sec-fetch-site", "cross-site");
            }
            if let Some(body) = &row.body {
                let body = fill(body, &world, imp, !api);
                request = if api {
                    request
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(body)
                } else {
                    request
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body)
                };
            } else if api && row.method != "GET" && row.method != "DELETE" {
                request = request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body("{}");
            }
            let response = request.send().await.expect("request");
            let status = response.status();
            // A stream (server-sent events) is not read to its end: it has none.
            let streaming = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let text = if streaming {
                String::new()
            } else {
                response.text().await.unwrap_or_default()
            };
            assert!(
                !status.is_server_error(),
                "line {}: {} {path} as {caller} answered {status}: {text}",
                row.line,
                row.method
            );
            let refused = status == StatusCode::UNAUTHORIZED
                || status == StatusCode::FORBIDDEN
                || (status == StatusCode::CONFLICT && text.contains("on_behalf_ended"));
            if let Some(code) = on_behalf_code(row.class, caller).filter(|_| status == StatusCode::FORBIDDEN)
            {
                // JSON carries the code; an error page (the CSV download) the sentence.
                let sentence = if code == "on_behalf_view_only" {
                    "is view only"
                } else {
                    "never done on someone"
                };
                let page_says_so = text.starts_with("<!DOCTYPE") && text.contains(sentence);
                if !text.contains(code) && !page_says_so {
                    wrong.push(format!(
                        "line {}: {} {path} as {caller}: not {code}: {text}",
                        row.line, row.method
                    ));
                }
            }
            if refused == row.expected[i] {
                wrong.push(format!(
                    "line {}: {} {} as {caller}: expected {}, got {status} {}",
                    row.line,
                    row.method,
                    row.path,
                    if row.expected[i] { "allowed" } else { "refused" },
                    text.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} outcomes differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    app.finish().await;
}

/// The code a refusal of a session on behalf must carry, by the route's class: a
/// protected action in either mode, a write in a view-only session.
fn on_behalf_code(class: Access, caller: &str) -> Option<&'static str> {
    match (class, caller) {
        (Access::Protected, "view" | "act") => Some("on_behalf_protected_action"),
        (Access::Write, "view") => Some("on_behalf_view_only"),
        _ => None,
    }
}

/// The pages of the audit viewer and oversight are protected like their server
/// functions: refused to a session on behalf in either mode, as an error page; the
/// member's own pages are read in both.
async fn protected_pages_are_refused_on_behalf_in_both_modes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let sam = app
        .create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let client = app.bare_client();
    for mode in [Mode::View, Mode::Act] {
        let (token, imp) = mint_in(&app, ann, Some((sam, mode)), false, false).await;
        let get = |path: String| {
            client
                .get(app.url(&path))
                .header(header::COOKIE, format!("behalf_session={token}"))
                .send()
        };
        for path in [
            "/admin/audit".to_string(),
            format!("/admin/audit/sessions/{imp}"),
            "/admin/impersonations".into(),
        ] {
            let response = get(path.clone()).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} in {mode:?}");
            let text = response.text().await.unwrap();
            assert!(text.contains("never done on someone"), "{path}: {text}");
        }
        // A path the page router would resolve into another page is refused outright,
        // never classified as the page it names (attacker review, Step 11). Sent as
        // written: an HTTP client library would resolve the dots itself.
        for path in [
            "/admin/./audit",
            "/on-behalf/%2e%2e/admin/audit",
            "/login/%2E%2E/admin/audit",
            "/one-click/../admin/audit",
            "/on-behalf/%2e%2e/account/sessions",
            "//admin/audit",
        ] {
            let status = raw_get(&app, path, &token).await;
            assert_eq!(status, 400, "{path} in {mode:?}");
        }
        for path in ["/account/orders", "/account/access-history", "/"] {
            let response = get(path.to_string()).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path} in {mode:?}");
        }
    }
    app.finish().await;
}

/// The status of `GET path` sent byte for byte as written, with the session cookie.
async fn raw_get(app: &TestApp, path: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: behalf_session={token}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
