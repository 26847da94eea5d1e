//! The `behalf` server: configuration, database start-up, HTTP and the CLI commands.

pub mod api;
pub mod config;
pub mod http;
pub mod listen;
pub mod one_click;
pub mod pages;
pub mod seed;

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock};

use app::{
    audit::verify::{head, keyed_from, verify_to, Anchor, Verdict},
    audit_writer::{claim_key_check, flush_folded, install_key, installed_key, AuditKey, NewEvent},
    clock::{Clock, HOUR, MINUTE},
    context::RequestContext,
    db::Db,
    error::AppError,
    members::directory::{count_with_role, create_member, NewMember},
    password::{hasher::PasswordHasher, Password},
    role::Role,
    secret::LinkKey,
    state::{AppState, Settings},
};
use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;

use crate::config::{CreateMemberArgs, InitAdminArgs, ServeArgs};

/// A failure of a CLI command, shown to the operator as one clear sentence.
pub type CliResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

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
    let router = http::router(
        state,
        leptos_options(SocketAddr::from(([127, 0, 0, 1], 0))),
        trust_proxy,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(listen::serve(listener, router, limits, std::future::pending()));
    Ok(addr)
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(database_url: &str, args: ServeArgs) -> CliResult<()> {
    let db = open_database(database_url).await?;
    tracing::info!(database = db.kind(), "database ready");
    if args.one_click_minutes > args.one_click_max_minutes {
        return Err(format!(
            "--one-click-minutes ({}) cannot be longer than --one-click-max-minutes ({})",
            args.one_click_minutes, args.one_click_max_minutes
        )
        .into());
    }
    let clock = Clock::system();
    let key = link_key(&db, clock.now()).await?;
    let state = app_state(db.clone(), settings_from(&args), clock).with_link_key(key);
    let state_for_flush = state.clone();
    let router = http::router(state, leptos_options(args.addr), args.trust_proxy);
    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local}");
    println!("Behalf is serving on http://{local}");
    let limits = listen::Limits {
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_seconds.into()),
        max_connections: args.max_connections as usize,
        ..listen::Limits::default()
    };
    let flusher = tokio::spawn(flush_refusals(state_for_flush.clone()));
    listen::serve(listener, router, limits, shutdown_signal()).await;
    flusher.abort();
    // The counts of refusals folded in the last minute are written before leaving.
    let now = state_for_flush.clock.now();
    if let Err(error) = flush_folded(&db, &state_for_flush.refusals, now, true).await {
        tracing::error!(%error, "could not write the folded refusals at shutdown");
    }
    db.close().await;
    Ok(())
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

pub async fn create_member_command(database_url: &str, args: CreateMemberArgs) -> CliResult<i64> {
    let db = open_database(database_url).await?;
    let hasher = PasswordHasher::new(1);
    let name = args
        .name
        .unwrap_or_else(|| args.email.split('@').next().unwrap_or("").trim().to_string());
    let new = NewMember {
        email: args.email,
        display_name: name,
        role: args.role,
        admin_access: args.role.default_admin_access(),
        login_enabled: true,
    };
    let id = create_member(
        &db,
        &hasher,
        app::clock::system_now(),
        new,
        Password::new(args.password),
        Some(command_record("member_created", "create-member")),
    )
    .await
    .map_err(describe)?;
    db.close().await;
    Ok(id)
}

/// Creates a super user with a random password when there is none. Returns the
/// credentials to print, or None when a super user already exists.
pub async fn init_admin_command(
    database_url: &str,
    args: InitAdminArgs,
) -> CliResult<Option<(String, String)>> {
    let db = open_database(database_url).await?;
    if count_with_role(&db, Role::SuperUser).await.map_err(describe)? > 0 {
        db.close().await;
        return Ok(None);
    }
    let password = random_password();
    let new = NewMember {
        email: args.email.clone(),
        display_name: "Administrator".to_string(),
        role: Role::SuperUser,
        admin_access: true,
        login_enabled: true,
    };
    create_member(
        &db,
        &PasswordHasher::new(1),
        app::clock::system_now(),
        new,
        Password::new(password.clone()),
        Some(command_record("member_created", "init-admin")),
    )
    .await
    .map_err(describe)?;
    db.close().await;
    Ok(Some((args.email, password)))
}

/// The record of a change made from the command line: no session, no address; the
/// details name the command.
pub fn command_record(action: &'static str, command: &str) -> NewEvent {
    NewEvent::new(action, &RequestContext::default()).details(serde_json::json!({ "via": command }))
}

/// 20 characters from an unambiguous alphabet (about 100 bits).
fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `behalf audit verify [--anchor ID:HASH]`: Ok(message) when the chain is intact
/// (and holds the anchor), Err(message) otherwise.
pub async fn audit_verify_command(
    database_url: &str,
    anchor: Option<Anchor>,
) -> CliResult<Result<String, String>> {
    let db = open_database(database_url).await?;
    let started = std::time::Instant::now();
    let verdict = verify_to(&db, anchor.as_ref()).await.map_err(describe)?;
    db.close().await;
    // An intact chain starts being keyed where the key says (verify_to checked that the
    // database agrees).
    let keyed = installed_key().map_err(describe)?.keyed_from;
    let took = started.elapsed().as_secs_f64();
    Ok(match verdict {
        Verdict::Intact { records } => {
            let mut message = format!("ok: {records} audit records verified in {took:.2} s");
            if keyed > 1 {
                message.push_str(&format!(
                    " (records before {keyed} predate the keyed chain and are linked by plain SHA-256)"
                ));
            }
            if let Some(anchor) = anchor {
                message.push_str(&format!("; record {} matches the anchor", anchor.id));
            }
            Ok(message)
        }
        Verdict::Broken { id, problem } => Err(format!("audit chain broken at record {id}: {problem}")),
    })
}

/// `behalf audit anchor`: verifies the chain, then prints its head as `ID:HASH` for
/// the operator to keep somewhere the database's writers cannot reach.
pub async fn audit_anchor_command(database_url: &str) -> CliResult<Result<String, String>> {
    let db = open_database(database_url).await?;
    let verdict = verify_to(&db, None).await.map_err(describe)?;
    let anchor = head(&db).await.map_err(describe)?;
    db.close().await;
    Ok(match (verdict, anchor) {
        (Verdict::Broken { id, problem }, _) => Err(format!(
            "audit chain broken at record {id}: {problem} (no anchor is printed for a broken chain)"
        )),
        (Verdict::Intact { .. }, None) => {
            Err("the audit trail is empty: there is nothing to anchor yet".into())
        }
        (Verdict::Intact { .. }, Some(anchor)) => Ok(anchor.to_string()),
    })
}

/// An application error as one sentence for the terminal (with the field, if any).
pub fn describe(error: AppError) -> Box<dyn std::error::Error + Send + Sync> {
    match error.field() {
        Some(field) => format!("{field}: {error}").into(),
        None => error.to_string().into(),
    }
}
