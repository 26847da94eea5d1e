//! Starting the server's parts: the database (migrated, with the audit key loaded),
//! the one-click link key, Leptos's settings and the application state; and serving
//! them on a free port (integration tests and benchmarks).

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock};

use app::{
    audit::verify::{head, keyed_from},
    audit_writer::{claim_key_check, flush_folded, flush_trail, install_key, AuditKey},
    clock::{Clock, HOUR, MINUTE},
    db::Db,
    error::AppError,
    password::hasher::PasswordHasher,
    secret::LinkKey,
    state::{AppState, Settings},
};
use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;

use crate::{config::ServeArgs, listen, router};

/// A failure of a CLI command, shown to the operator as one clear sentence.
pub type CliResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// An application error as one sentence for the terminal (with the field, if any).
pub fn describe(error: AppError) -> Box<dyn std::error::Error + Send + Sync> {
    match error.field() {
        Some(field) => format!("{field}: {error}").into(),
        None => error.to_string().into(),
    }
}

/// Opens the database, applies pending migrations and loads the audit key (see
/// `load_audit_key`).
pub async fn open_database(url: &str) -> CliResult<Db> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    load_audit_key(&db, url).await?;
    Ok(db)
}

static AUDIT_KEY_FILE: OnceLock<PathBuf> = OnceLock::new();

/// The audit key file given on the command line (`--audit-key-file`).
pub fn set_audit_key_file(path: PathBuf) {
    let _ = AUDIT_KEY_FILE.set(path);
}

/// Where the audit key is read from when `BEHALF_AUDIT_KEY` is not set: the file
/// given, or beside a SQLite database (`behalf.db` → `behalf.db.audit-key`), or
/// `behalf-audit.key` in the working directory for PostgreSQL.
pub fn audit_key_path(url: &str) -> PathBuf {
    if let Some(path) = AUDIT_KEY_FILE.get() {
        return path.clone();
    }
    match url.strip_prefix("sqlite:") {
        Some(rest) => {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            PathBuf::from(format!("{path}.audit-key"))
        }
        None => PathBuf::from("behalf-audit.key"),
    }
}

/// Loads the key of the audit chain and makes it this process's: from
/// `BEHALF_AUDIT_KEY` (64 hex digits, or a passphrase of at least 32 characters; the
/// chain is then taken to be keyed from record 1, or from `BEHALF_AUDIT_KEYED_FROM`) or
/// from the key file, which is created (readable by its owner only) when missing —
/// unless records were already written with a key: then the file is needed and its
/// absence stops the command. The first instance to start writes the key's check value
/// into the database; an instance holding another key refuses to start.
pub async fn load_audit_key(db: &Db, url: &str) -> CliResult<()> {
    let key = match std::env::var("BEHALF_AUDIT_KEY").ok().filter(|s| !s.is_empty()) {
        Some(secret) => {
            if secret.chars().count() < 32 {
                return Err("BEHALF_AUDIT_KEY must be at least 32 characters long".into());
            }
            let first = match std::env::var("BEHALF_AUDIT_KEYED_FROM")
                .ok()
                .filter(|s| !s.is_empty())
            {
                None => 1,
                Some(text) => text
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or("BEHALF_AUDIT_KEYED_FROM is a record number (1 or more)")?,
            };
            AuditKey::from_secret(&secret).keyed_from(first)
        }
        None => key_from_file(db, &audit_key_path(url)).await?,
    };
    if !claim_key_check(db, &key).await.map_err(describe)? {
        return Err(
            "this database's audit chain is kept with another key than the one configured here \
                    (BEHALF_AUDIT_KEY or the audit key file): every instance needs the same key"
                .into(),
        );
    }
    install_key(key).map_err(describe)?;
    Ok(())
}

/// The key in `path`, or a new one written there when there is none and no record was
/// written with a key yet.
async fn key_from_file(db: &Db, path: &std::path::Path) -> CliResult<AuditKey> {
    let read = |text: String| {
        AuditKey::from_key_file(&text).ok_or_else(|| {
            format!(
                "the audit key file {} does not hold a key (64 hex digits, then `keyed-from N`)",
                path.display()
            )
        })
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(read(text)?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(format!("cannot read the audit key file {}: {error}", path.display()).into())
        }
    }
    let last_id = head(db).await.map_err(describe)?.map_or(0, |head| head.id);
    let first = keyed_from(db).await.map_err(describe)?.unwrap_or(last_id + 1);
    if first <= last_id {
        return Err(format!(
            "the audit key file {} is missing, but audit records from {first} on were written with a key: \
             restore the file (or point BEHALF_AUDIT_KEY_FILE at it)",
            path.display()
        )
        .into());
    }
    let key = AuditKey::generate().keyed_from(first);
    match write_key_file(path, &key) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the audit key file: keep a copy of it with your backups, apart from the database");
            Ok(key)
        }
        // Another instance created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(read(std::fs::read_to_string(path)?)?)
        }
        Err(error) => Err(format!("cannot create the audit key file {}: {error}", path.display()).into()),
    }
}

fn write_key_file(path: &std::path::Path, key: &AuditKey) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.to_key_file().as_bytes())?;
    file.sync_all()
}

/// Leptos's settings: where the built site is (LEPTOS_SITE_ROOT, default target/site).
pub fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".to_string());
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") | Ok("dev") => Env::DEV,
        _ => Env::PROD,
    };
    LeptosOptions::builder()
        .output_name("behalf")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(env)
        .build()
}

pub fn app_state(db: Db, settings: Settings, clock: Clock) -> AppState {
    AppState::new(db, clock, PasswordHasher::with_default_limit(), settings)
}

pub fn settings_from(args: &ServeArgs) -> Settings {
    Settings {
        session_idle_timeout: i64::from(args.session_idle_minutes) * MINUTE,
        session_lifetime: i64::from(args.session_lifetime_hours) * HOUR,
        on_behalf_max_duration: i64::from(args.on_behalf_max_minutes) * MINUTE,
        sign_in_per_ip_per_minute: args.sign_in_per_ip_per_minute,
        cors_origins: args.cors_origin.clone(),
        request_timeout_seconds: args.request_timeout_seconds.into(),
        argon2_queue: args.argon2_queue as usize,
        one_click_default_minutes: i64::from(args.one_click_minutes.min(args.one_click_max_minutes)),
        one_click_max_minutes: i64::from(args.one_click_max_minutes),
        public_url: args.public_url.clone(),
        act_min_role: args.act_min_role,
        consent_required: args.consent == crate::config::Consent::Required,
        mail: args.mail_settings(),
    }
}

/// The one-click link key: `BEHALF_SECRET` when set, otherwise the one kept in the
/// database (generated there by the first instance to start).
pub async fn link_key(db: &Db, now: app::clock::Millis) -> CliResult<LinkKey> {
    let configured = std::env::var("BEHALF_SECRET").ok().filter(|s| !s.is_empty());
    let (key, source) = LinkKey::load_or_create(db, configured.as_deref(), now).await?;
    tracing::info!(?source, "one-click link key ready");
    Ok(key)
}

/// Serves `state` in the background on a free loopback port and returns the
/// address (integration tests and benchmarks).
pub async fn spawn_on_free_port(state: AppState, trust_proxy: bool) -> std::io::Result<SocketAddr> {
    spawn_with_limits(state, trust_proxy, listen::Limits::default()).await
}

/// `spawn_on_free_port` with the connection limits given (the slowloris test).
pub async fn spawn_with_limits(
    state: AppState,
    trust_proxy: bool,
    limits: listen::Limits,
) -> std::io::Result<SocketAddr> {
    let state_for_trail = state.clone();
    let router = router::router(
        state,
        leptos_options(SocketAddr::from(([127, 0, 0, 1], 0))),
        trust_proxy,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(listen::serve(listener, router, limits, std::future::pending()));
    tokio::spawn(flush_views(state_for_trail.clone()));
    spawn_consent_tasks(&state_for_trail);
    Ok(addr)
}

/// The member-in-the-loop tasks (Step 12): expiry of requests and grants every half
/// minute, the mailer (when SMTP is configured), and on PostgreSQL the presence
/// listener that brings other instances' wakes.
pub fn spawn_consent_tasks(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                every.tick().await;
                if let Err(error) = app::consent::sweep::expire_due(&state).await {
                    tracing::error!(%error, "could not record expired requests and grants");
                }
            }
        })
    };
    let mut tasks = vec![sweeper, tokio::spawn(app::consent::mail::run(state.clone()))];
    if let app::db::Db::Postgres(pool) = &state.db {
        tasks.push(tokio::spawn(crate::presence::listen(
            pool.clone(),
            state.presence.clone(),
        )));
    }
    tasks
}

/// Every second, writes the view trail noted since (`audit_writer::trail`).
pub async fn flush_views(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // In a task of its own: stopping this loop at shutdown (abort) never cancels a
        // write half-way (its records taken from memory but not committed).
        let state = state.clone();
        let flush = tokio::spawn(async move {
            if let Err(error) = flush_trail(&state.db, &state.trail, state.clock.now(), false).await {
                tracing::error!(%error, "could not write the view trail (kept for the next try)");
            }
        });
        let _ = flush.await;
    }
}

/// Every few seconds, writes the counts of refusals folded in windows now over.
pub async fn flush_refusals(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        if let Err(error) = flush_folded(&state.db, &state.refusals, state.clock.now(), false).await {
            tracing::error!(%error, "could not write folded refusals");
        }
    }
}

/// The record of a change made from the command line: no session, no address; the
/// details name the command.
pub fn command_record(action: app::audit_action::AuditAction, command: &str) -> app::audit_writer::NewEvent {
    app::audit_writer::NewEvent::new(action, &app::context::RequestContext::default())
        .details(serde_json::json!({ "via": command }))
}
