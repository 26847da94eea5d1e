//! Test harness: the real application on a random port with its own database — a
//! temporary SQLite file, or a fresh PostgreSQL schema when
//! BEHALF_TEST_POSTGRES_URL is set — and an HTTP client that keeps cookies and
//! does not follow redirects.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU32, Ordering},
};

use app::{
    clock::Clock,
    db::Db,
    members::{
        directory::{create_member, NewMember},
        Role,
    },
    password::{hasher::PasswordHasher, Password},
    state::{AppState, Settings},
};
use reqwest::{header, redirect::Policy, Client, Response, StatusCode};
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";

/// No request of a test takes this long unless the server hangs; failing then
/// names the request instead of stalling the whole run.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub clock: Clock,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

pub struct Options {
    pub trust_proxy: bool,
    pub settings: Settings,
}

impl Default for Options {
    /// The product's settings, except the per-address sign-in limit and the argon2
    /// queue: every test client comes from 127.0.0.1, and only their own tests
    /// exercise them.
    fn default() -> Self {
        Options {
            trust_proxy: false,
            settings: Settings {
                sign_in_per_ip_per_minute: 100_000,
                // Parallel-request tests must reach the per-account checks they test;
                // the bounded argon2 queue has a test of its own.
                argon2_queue: 10_000,
                ..Settings::default()
            },
        }
    }
}

/// Runs `$body` with `$pool` bound to the concrete pool, as `app`'s own `with_db!`
/// (not exported from `app`). Visible in every test module through
/// `#[macro_use] mod common;` in main.rs.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            app::db::Db::Sqlite($pool) => $body,
            app::db::Db::Postgres($pool) => $body,
        }
    };
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The audit key every test app's chain is written with.
pub const TEST_AUDIT_KEY: [u8; 32] = [0x5a; 32];

/// Runs `body` against a fresh app on `backend`, or prints why it is skipped.
/// (Visible in every test module through `#[macro_use] mod common;` in main.rs.)
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if std::env::var("BEHALF_TEST_POSTGRES_URL").is_err() {
                        eprintln!("skipped: BEHALF_TEST_POSTGRES_URL is not set, so there is no PostgreSQL to test against");
                        return;
                    }
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> TestApp {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let (db, dir, schema) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("behalf.db").display());
                (Db::connect(&url).await.expect("open sqlite"), Some(dir), None)
            }
            Backend::Postgres => {
                let url = std::env::var("BEHALF_TEST_POSTGRES_URL").expect("postgres url");
                let schema = format!("behalf_test_{}_{}_{}", std::process::id(), n, rand_suffix());
                let admin = sqlx::PgPool::connect(&url).await.expect("connect to postgres");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                let db = Db::connect_in_schema(&url, Some(&schema))
                    .await
                    .expect("open postgres");
                (db, None, Some((url, schema)))
            }
        };
        db.migrate().await.expect("migrations apply");
        // One key per test process, as per server process (see audit_writer).
        app::audit_writer::install_key(app::audit_writer::AuditKey::from_bytes(TEST_AUDIT_KEY))
            .expect("the audit key");
        let clock = Clock::manual(app::clock::system_now());
        let key = server::link_key(&db, clock.now()).await.expect("link key");
        let state =
            AppState::new(db, clock.clone(), PasswordHasher::new(2), options.settings).with_link_key(key);
        let addr = server::spawn_on_free_port(state.clone(), options.trust_proxy)
            .await
            .expect("serve");
        TestApp {
            addr,
            state,
            clock,
            _dir: dir,
            schema,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap()
    }

    /// A client without a cookie store (each request carries what the test gives it);
    /// does not follow redirects.
    pub fn bare_client(&self) -> Client {
        Client::builder()
            .redirect(Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap()
    }

    pub async fn create_member(&self, email: &str, name: &str, role: Role) -> i64 {
        create_member(
            &self.state.db,
            &self.state.hasher,
            self.clock.now(),
            NewMember {
                email: email.to_string(),
                display_name: name.to_string(),
                role,
                admin_access: role.default_admin_access(),
                login_enabled: true,
            },
            Password::new(PASSWORD),
            None,
        )
        .await
        .expect("member created")
    }

    pub async fn login(&self, client: &Client, email: &str, password: &str) -> Response {
        client
            .post(self.url("/api/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .expect("login request")
    }

    /// A client signed in as `email` with the shared test password.
    pub async fn signed_in(&self, email: &str) -> Client {
        let client = self.client();
        let response = self.login(&client, email, PASSWORD).await;
        assert!(
            response.status().is_success() && session_cookie(&response).is_some(),
            "{email} signs in"
        );
        client
    }

    /// POSTs a form (a server function call) and returns the raw response.
    pub async fn post_form(&self, client: &Client, path: &str, form: &[(&str, &str)]) -> Response {
        client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// POSTs a form; the status and the body as JSON (a JSON string if it is not JSON).
    pub async fn post(&self, client: &Client, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        json_of(self.post_form(client, path, form).await).await
    }

    pub async fn logout(&self, client: &Client) -> Response {
        client
            .post(self.url("/api/logout"))
            .send()
            .await
            .expect("logout request")
    }

    /// The signed-in member's email according to the server, or None.
    pub async fn whoami(&self, client: &Client) -> Option<String> {
        let response = client
            .post(self.url("/api/whoami"))
            .send()
            .await
            .expect("whoami request");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        body.get("email").and_then(|v| v.as_str()).map(str::to_string)
    }

    /// A raw request with only this session cookie (no cookie store).
    pub async fn whoami_with_token(&self, token: &str) -> Option<String> {
        let (_, body) = self.viewer_with_token(token).await;
        body.get("email").and_then(|v| v.as_str()).map(str::to_string)
    }

    /// `whoami`'s whole answer (the status, and the viewer or `null`) with only this
    /// session cookie (no cookie store).
    pub async fn viewer_with_token(&self, token: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .bare_client()
            .post(self.url("/api/whoami"))
            .header(header::COOKIE, format!("behalf_session={token}"))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// A JSON API call with a bearer token (or none) and a JSON body (or none), from a
    /// client without a cookie store: the status and the body as JSON.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.bare_client().request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.expect("api request")).await
    }

    /// Signs in through the JSON API with the shared test password; the bearer token.
    pub async fn api_login(&self, email: &str) -> String {
        let body = serde_json::json!({ "email": email, "password": PASSWORD });
        let (status, body) = self
            .api(reqwest::Method::POST, "/api/v1/login", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{email} signs in: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let (value,): (i64,) = with_db!(&self.state.db, pool => {
            sqlx::query_as(sql).fetch_one(pool).await.expect("scalar query")
        });
        value
    }

    pub async fn execute(&self, sql: &str) {
        with_db!(&self.state.db, pool => {
            sqlx::query(sql).execute(pool).await.expect("statement");
        });
    }

    /// Drops the PostgreSQL schema (SQLite's temp dir goes on its own).
    pub async fn finish(self) {
        tokio::time::timeout(REQUEST_TIMEOUT, self.state.db.close())
            .await
            .expect("the database pool closes (no connection left checked out)");
        if let Some((url, schema)) = &self.schema {
            if let Ok(admin) = sqlx::PgPool::connect(url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await;
                admin.close().await;
            }
        }
    }
}

fn rand_suffix() -> u32 {
    use rand::Rng;
    rand::rng().random_range(0..1_000_000)
}

/// A response's status and its body as JSON (a JSON string if it is not JSON).
pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("response body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The value of our session cookie in a response's Set-Cookie headers.
pub fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("behalf_session=") || v.starts_with("__Host-behalf_session="))
        .map(str::to_string)
}

pub fn token_of(set_cookie: &str) -> String {
    set_cookie
        .trim_start_matches("__Host-")
        .trim_start_matches("behalf_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}
