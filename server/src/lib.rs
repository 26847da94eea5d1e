//! The `behalf` server: configuration, database start-up, HTTP and the CLI commands.

pub mod api;
pub mod config;
pub mod http;
pub mod listen;
pub mod one_click;
pub mod pages;
pub mod seed;

use std::net::SocketAddr;

use app::{
    audit::verify::{verify, Verdict},
    audit_writer::NewEvent,
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

/// Opens the database and applies pending migrations.
pub async fn open_database(url: &str) -> CliResult<Db> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    Ok(db)
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
    listen::serve(listener, router, limits, shutdown_signal()).await;
    db.close().await;
    Ok(())
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

/// `behalf audit verify`: Ok(message) when the chain is intact, Err(message) otherwise.
pub async fn audit_verify_command(database_url: &str) -> CliResult<Result<String, String>> {
    let db = open_database(database_url).await?;
    let started = std::time::Instant::now();
    let verdict = verify(&db).await.map_err(describe)?;
    db.close().await;
    let took = started.elapsed().as_secs_f64();
    Ok(match verdict {
        Verdict::Intact { records } => Ok(format!("ok: {records} audit records verified in {took:.2} s")),
        Verdict::Broken { id, problem } => Err(format!("audit chain broken at record {id}: {problem}")),
    })
}

/// An application error as one sentence for the terminal (with the field, if any).
pub fn describe(error: AppError) -> Box<dyn std::error::Error + Send + Sync> {
    match error.field() {
        Some(field) => format!("{field}: {error}").into(),
        None => error.to_string().into(),
    }
}
