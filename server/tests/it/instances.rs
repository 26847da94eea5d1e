//! Several instances behind a load balancer: two `behalf serve` processes (the real
//! binary, the same settings and audit key file) on one fresh PostgreSQL database,
//! spoken to over real HTTP, each request going to whichever instance the test picks,
//! as a load balancer without sticky sessions would send it. A session started on one
//! goes on on the other, the sign-in throttle and the re-authentication lockout count
//! attempts made on both, a revocation made on one is seen by the other at its next
//! request, and the audit trail stays one verifiable chain written by both.

use std::collections::BTreeMap;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    common::{json_of, Backend, REQUEST_TIMEOUT},
    served::{Database, Served},
};

const PASSWORD: &str = "instances password 1";

/// The host the "load balancer" is reached at: every request, to either instance,
/// carries it (the proxy passes the browser's Host on unchanged).
const HOST: &str = "behalf.test";

/// Two instances on one new PostgreSQL database, with a few members and the
/// catalogue.
struct Pair {
    db: Database,
    a: Served,
    b: Served,
    /// The member IDs by email.
    ids: BTreeMap<&'static str, i64>,
    product: i64,
}

const MEMBERS: [(&str, &str); 5] = [
    ("ada@example.com", "super_user"),
    ("sam@example.com", "support"),
    ("ann@example.com", "member"),
    ("bob@example.com", "member"),
    ("tia@example.com", "member"),
];

impl Pair {
    /// As docs/deploying.md says: the migrations once (`behalf migrate`), then the
    /// instances, each with the same settings and audit key file. None (the reason
    /// printed) without PostgreSQL.
    async fn start() -> Option<Pair> {
        let db = Database::new(Backend::Postgres).await?;
        let out = db.behalf(&["migrate"]);
        assert!(out.status.success(), "{}", crate::served::text(&out));
        for (email, role) in MEMBERS {
            let out = db.behalf(&[
                "create-member",
                "--email",
                email,
                "--password",
                PASSWORD,
                "--role",
                role,
            ]);
            assert!(out.status.success(), "{}", crate::served::text(&out));
        }
        let pool = app::db::Db::connect(&db.url).await.unwrap();
        app::orders::service::ensure_catalogue(&pool, app::clock::system_now())
            .await
            .unwrap();
        pool.close().await;
        let settings = [
            ("BEHALF_DEMO", "0"),
            // Every client here is 127.0.0.1: the per-address limit (per instance, in
            // memory) is lifted so the per-account throttle is what is tested.
            ("BEHALF_SIGN_IN_PER_IP_PER_MINUTE", "100000"),
            ("BEHALF_ON_BEHALF_MAX_MINUTES", "30"),
        ];
        let (a, b) = (db.start_serving(&settings, &[]), db.start_serving(&settings, &[]));
        let (a, b) = (a.serving(), b.serving());
        let mut ids = BTreeMap::new();
        for (email, _) in MEMBERS {
            let id = db
                .scalar(&format!("SELECT id FROM members WHERE email_key = '{email}'"))
                .await;
            ids.insert(email, id);
        }
        let product = db.scalar("SELECT MIN(id) FROM products").await;
        Some(Pair {
            db,
            a,
            b,
            ids,
            product,
        })
    }

    fn on(&self, instance: char) -> &Served {
        match instance {
            'A' => &self.a,
            _ => &self.b,
        }
    }

    /// A JSON API call with a bearer token to instance `A` or `B`.
    async fn api(
        &self,
        instance: char,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = client()
            .request(method, self.on(instance).url(path))
            .header(header::HOST, HOST)
            .header(header::USER_AGENT, format!("instances test via {instance}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.expect("api request")).await
    }

    async fn login(&self, instance: char, email: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({ "email": email, "password": password });
        self.api(instance, Method::POST, "/api/v1/login", None, Some(body))
            .await
    }

    async fn token(&self, instance: char, email: &str) -> String {
        let (status, body) = self.login(instance, email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{email} on {instance}: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    async fn alias_login(
        &self,
        instance: char,
        token: &str,
        member: i64,
        password: &str,
    ) -> (StatusCode, Value) {
        let body =
            json!({ "member_id": member, "password": password, "reason": "Ticket T-77", "mode": "act" });
        self.api(
            instance,
            Method::POST,
            "/api/v1/alias_login",
            Some(token),
            Some(body),
        )
        .await
    }

    /// `behalf audit verify` says ok, over records written by both instances.
    async fn verify(&self) {
        self.db.verify_ok();
        for instance in ['A', 'B'] {
            let records = self
                .db
                .scalar(&format!(
                    "SELECT COUNT(*) FROM audit_events WHERE user_agent = 'instances test via {instance}'"
                ))
                .await;
            assert!(records > 0, "records written by instance {instance}");
        }
    }

    async fn finish(self) {
        drop((self.a, self.b));
        self.db.finish().await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// A browser behind the load balancer: it keeps its cookies itself (one jar for the
/// one site, whichever instance answers) and sends what a browser sends with a form
/// post from the app's own page: the site's Host, Origin and `Sec-Fetch-Site`.
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    /// Calls a server function on instance `A` or `B`.
    async fn post(
        &mut self,
        pair: &Pair,
        instance: char,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = client()
            .post(pair.on(instance).url(path))
            .header(header::HOST, HOST)
            .header(header::ORIGIN, format!("http://{HOST}"))
            .header("sec-fetch-site", "same-origin")
            .header(header::USER_AGENT, format!("instances test via {instance}"))
            .form(form);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, jar.join("; "));
        }
        let response = request.send().await.expect("server function request");
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap_or_default();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let cleared = value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0");
            if cleared {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        json_of(response).await
    }

    async fn whoami(&mut self, pair: &Pair, instance: char) -> Option<String> {
        let (status, body) = self.post(pair, instance, "/api/whoami", &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["email"].as_str().map(str::to_string)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_goes_on_across_instances_by_cookie_and_by_bearer_token() {
    let Some(pair) = Pair::start().await else { return };
    let (ann, bob) = (pair.ids["ann@example.com"], pair.ids["bob@example.com"]);
    let product = pair.product.to_string();

    // As the browser does: sign in on A, start on behalf on B, order on A, leave on B.
    let mut browser = Browser::default();
    let form = [("email", "sam@example.com"), ("password", PASSWORD)];
    let (status, body) = browser.post(&pair, 'A', "/api/login", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        browser.whoami(&pair, 'B').await.as_deref(),
        Some("sam@example.com")
    );
    let ann_id = ann.to_string();
    let form = [
        ("member_id", ann_id.as_str()),
        ("password", PASSWORD),
        ("reason", "Ticket T-76"),
        ("mode", "act"),
    ];
    let (status, body) = browser.post(&pair, 'B', "/api/on-behalf/start", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        browser.whoami(&pair, 'A').await.as_deref(),
        Some("ann@example.com")
    );
    let form = [("product_id", product.as_str()), ("quantity", "2")];
    let (status, body) = browser.post(&pair, 'A', "/api/orders/place", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = browser.post(&pair, 'B', "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        browser.whoami(&pair, 'A').await.as_deref(),
        Some("sam@example.com")
    );
    let sam = pair.ids["sam@example.com"];
    let placed = format!("SELECT COUNT(*) FROM orders WHERE member_id = {ann} AND placed_by = {sam}");
    assert_eq!(pair.db.scalar(&placed).await, 1);

    // The same with bearer tokens (the JSON API).
    let token = pair.token('A', "sam@example.com").await;
    let (status, body) = pair.alias_login('B', &token, bob, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_behalf = body["token"].as_str().unwrap().to_string();
    let order = json!({ "product_id": pair.product, "quantity": 1 });
    let (status, body) = pair
        .api('A', Method::POST, "/api/v1/orders", Some(&on_behalf), Some(order))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["order"]["placed_by"], "sam");
    let (status, body) = pair
        .api('B', Method::POST, "/api/v1/alias_logout", Some(&on_behalf), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let back = body["token"].as_str().unwrap().to_string();
    let (status, body) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&back), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["member"]["email"].as_str(), &body["on_behalf"]),
        (Some("sam@example.com"), &Value::Null)
    );
    // The tokens that ended on one instance are refused on the other.
    let (status, body) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&on_behalf), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("on_behalf_ended"))
    );
    let (status, _) = pair
        .api('B', Method::GET, "/api/v1/profile", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A one-click link made on A is used on B: the link key is the database's.
    let create = format!("/api/v1/members/{ann}/one_click_links");
    let (status, body) = pair
        .api('A', Method::POST, &create, Some(&back), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let link = body["path"].as_str().unwrap().to_string();
    let mut visitor = Browser::default();
    let (status, body) = visitor.post(&pair, 'B', &link, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        visitor.whoami(&pair, 'A').await.as_deref(),
        Some("ann@example.com")
    );

    pair.verify().await;
    pair.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_throttle_and_the_reauthentication_lockout_count_on_both_instances() {
    let Some(pair) = Pair::start().await else { return };
    // Five wrong passwords, three on A and two on B, lock the account on both.
    for instance in ['A', 'B', 'A', 'B', 'A'] {
        let (status, body) = pair.login(instance, "tia@example.com", "not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{instance}: {body}");
    }
    for instance in ['B', 'A'] {
        let (status, body) = pair.login(instance, "tia@example.com", PASSWORD).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
            "{instance}: {body}"
        );
    }

    // Five wrong re-entered passwords, split the same way, lock login on behalf on both.
    let token = pair.token('A', "sam@example.com").await;
    let ann = pair.ids["ann@example.com"];
    for instance in ['B', 'A', 'B', 'A', 'B'] {
        let (status, body) = pair.alias_login(instance, &token, ann, "not the password").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("wrong_password")),
            "{instance}: {body}"
        );
    }
    for instance in ['A', 'B'] {
        let (status, body) = pair.alias_login(instance, &token, ann, PASSWORD).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("locked_out")),
            "{instance}: {body}"
        );
    }
    pair.verify().await;
    pair.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_seen_by_the_other_at_its_next_request() {
    let Some(pair) = Pair::start().await else { return };
    let (ann, bob) = (pair.ids["ann@example.com"], pair.ids["bob@example.com"]);
    let ada = pair.token('B', "ada@example.com").await;

    // An overseer on B ends a session on behalf made on A.
    let sam = pair.token('A', "sam@example.com").await;
    let (status, body) = pair.alias_login('A', &sam, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_behalf = body["token"].as_str().unwrap().to_string();
    let (status, body) = pair
        .api('B', Method::GET, "/api/v1/impersonations", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["impersonations"][0]["id"]
        .as_i64()
        .expect("the live session on behalf");
    let path = format!("/api/v1/impersonations/{id}");
    let (status, body) = pair.api('B', Method::DELETE, &path, Some(&ada), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&on_behalf), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("on_behalf_ended"))
    );

    // A member ends one of their sessions on B; the other instance refuses it.
    let (first, second) = (
        pair.token('A', "ann@example.com").await,
        pair.token('A', "ann@example.com").await,
    );
    let (status, body) = pair
        .api('B', Method::GET, "/api/v1/sessions", Some(&first), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other = body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_i64())
        .unwrap_or_else(|| panic!("the other session in {body}"));
    let (status, body) = pair
        .api(
            'B',
            Method::DELETE,
            &format!("/api/v1/sessions/{other}"),
            Some(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&second), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&first), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // The rule changes on B (Bob may no longer sign in): on A, his own session is over,
    // and so is a session on his behalf.
    let bob_token = pair.token('A', "bob@example.com").await;
    let sam = pair.token('A', "sam@example.com").await;
    let (status, body) = pair.alias_login('A', &sam, bob, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_behalf = body["token"].as_str().unwrap().to_string();
    let change = json!({ "login_enabled": false });
    let (status, body) = pair
        .api(
            'B',
            Method::PATCH,
            &format!("/api/v1/members/{bob}"),
            Some(&ada),
            Some(change),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&bob_token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = pair
        .api('A', Method::GET, "/api/v1/profile", Some(&on_behalf), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("on_behalf_ended"))
    );

    pair.verify().await;
    pair.finish().await;
}
