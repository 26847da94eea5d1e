//! The real `behalf` binary, as an operator runs it: a database of its own (a SQLite
//! file, or a fresh PostgreSQL database on the server of BEHALF_TEST_POSTGRES_URL) with
//! its audit key file beside it, commands run against it, and `behalf serve` processes
//! read until they say they are serving and killed when dropped.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::common::Backend;

/// How long a `behalf serve` may take to start (migrations, and on a new database the
/// demo: a few argon2 hashes and a few hundred members).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A database for the binary, dropped (PostgreSQL) or removed (SQLite) by `finish`.
pub struct Database {
    pub url: String,
    pub key_file: PathBuf,
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the server's URL and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl Database {
    /// A new, empty database on `backend`, or None (with the reason printed) when
    /// there is no PostgreSQL to test against.
    pub async fn new(backend: Backend) -> Option<Database> {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = dir.path().join("audit.key");
        match backend {
            Backend::Sqlite => Some(Database {
                url: format!("sqlite:{}", dir.path().join("behalf.db").display()),
                key_file,
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let Ok(server) = std::env::var("BEHALF_TEST_POSTGRES_URL") else {
                    eprintln!("skipped: BEHALF_TEST_POSTGRES_URL is not set, so there is no PostgreSQL to test against");
                    return None;
                };
                use rand::Rng;
                let name = format!(
                    "behalf_bin_{}_{}",
                    std::process::id(),
                    rand::rng().random_range(0..1_000_000_000u32)
                );
                let admin = sqlx::PgPool::connect(&server).await.expect("connect to postgres");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .expect("create database");
                admin.close().await;
                let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
                Some(Database {
                    url: format!("{base}/{name}"),
                    key_file,
                    dir,
                    postgres: Some((server.clone(), name)),
                })
            }
        }
    }

    /// A `behalf` command on this database, with its key file, logging warnings only.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_behalf"));
        command
            .args(args)
            .env("BEHALF_DATABASE_URL", &self.url)
            .env("BEHALF_AUDIT_KEY_FILE", &self.key_file)
            .env("BEHALF_LOG", "warn")
            .env_remove("BEHALF_AUDIT_KEY")
            .env_remove("BEHALF_DEMO");
        command
    }

    /// Runs a command to its end.
    pub fn behalf(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("behalf runs")
    }

    /// `behalf audit verify`: its output, asserting that it says ok.
    pub fn verify_ok(&self) -> String {
        let out = self.behalf(&["audit", "verify"]);
        let said = text(&out);
        assert!(out.status.success() && said.contains("ok: "), "{said}");
        said
    }

    /// Starts `behalf serve` on a free port with `env` set and `args` added, and
    /// waits until it serves.
    pub fn serve(&self, env: &[(&str, &str)], args: &[&str]) -> Served {
        self.start_serving(env, args).serving()
    }

    /// Starts `behalf serve` without waiting (to start several at once).
    pub fn start_serving(&self, env: &[(&str, &str)], args: &[&str]) -> Starting {
        Starting::spawn(self, env, args)
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let db = app::db::Db::connect(&self.url).await.expect("open the database");
        let (value,): (i64,) = with_db!(&db, pool => sqlx::query_as(sql).fetch_one(pool).await.expect(sql));
        db.close().await;
        value
    }

    /// Drops the PostgreSQL database (the SQLite file goes with the temp dir).
    pub async fn finish(self) {
        if let Some((server, name)) = &self.postgres {
            if let Ok(admin) = sqlx::PgPool::connect(server).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await;
                admin.close().await;
            }
        }
    }
}

/// A command's stdout and stderr as one text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A running `behalf serve`, killed when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it printed on stdout before "Behalf is serving".
    pub printed: String,
}

/// A `behalf serve` started, not yet known to serve.
pub struct Starting {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Starting {
    fn spawn(database: &Database, env: &[(&str, &str)], args: &[&str]) -> Starting {
        let log = database
            .dir
            .path()
            .join(format!("serve-{}.log", rand::random::<u32>()));
        let mut command = database.command(&["serve", "--addr", "127.0.0.1:0"]);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = command.spawn().expect("behalf serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, also once no one listens: a closed pipe would make the
            // server's next line on stdout fail.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        Starting { child, lines, log }
    }

    /// Waits for "Behalf is serving on …", keeping what was printed before it.
    pub fn serving(mut self) -> Served {
        let mut printed = String::new();
        loop {
            match self.lines.recv_timeout(START_TIMEOUT) {
                Ok(line) => match line.strip_prefix("Behalf is serving on ") {
                    Some(base) => {
                        return Served {
                            child: self.child,
                            base: base.trim().to_string(),
                            printed,
                        }
                    }
                    None => {
                        printed.push_str(&line);
                        printed.push('\n');
                    }
                },
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    panic!("behalf serve did not start serving.\nstdout:\n{printed}\nstderr:\n{log}");
                }
            }
        }
    }
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// A JSON API call with a bearer token (or none) and a JSON body (or none): the
    /// status and the body as JSON.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(crate::common::REQUEST_TIMEOUT)
            .build()
            .unwrap();
        let mut request = client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        crate::common::json_of(request.send().await.expect("api request")).await
    }

    /// Signs in through the JSON API; the bearer token.
    pub async fn api_login(&self, email: &str, password: &str) -> String {
        let body = serde_json::json!({ "email": email, "password": password });
        let (status, body) = self
            .api(reqwest::Method::POST, "/api/v1/login", None, Some(body))
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{email} signs in: {body}");
        body["token"].as_str().unwrap().to_string()
    }
}
