//! The command line and typed settings: flags, `BEHALF_*` variables, defaults.

use std::net::SocketAddr;

use app::role::Role;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "behalf",
    version,
    about = "Behalf: log in on behalf of another member, safely.",
    long_about = "Behalf lets admins and support engineers switch into a member's account — after \
                  re-entering their own password, under a banner they cannot miss, with hard limits \
                  and an audit trail — and switch back.\n\nEvery command reads the database from \
                  --database-url or BEHALF_DATABASE_URL (default: a SQLite file behalf.db in the \
                  working directory; postgres://… selects PostgreSQL)."
)]
pub struct Cli {
    /// Database URL: sqlite:PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "BEHALF_DATABASE_URL",
        default_value = "sqlite:behalf.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// The audit chain's key file (64 hex digits; created, readable by its owner only,
    /// when missing). Default: beside a SQLite database (`behalf.db.audit-key`), or
    /// `behalf-audit.key` in the working directory. BEHALF_AUDIT_KEY, a passphrase of 32
    /// or more characters, takes its place when set.
    #[arg(long, env = "BEHALF_AUDIT_KEY_FILE", global = true)]
    pub audit_key_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application (applies pending migrations first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a member who can sign in.
    CreateMember(CreateMemberArgs),
    /// Fill the database with realistic, deterministic demo members.
    Seed(SeedArgs),
    /// Create a first super user if there is none, and print its credentials once.
    InitAdmin(InitAdminArgs),
    /// Drive load scenarios against a running server at URL and report req/s and
    /// latency percentiles (starts nothing; sends traffic only to URL).
    Bench(crate::bench::BenchArgs),
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the keyed hash chain and report the first record that does not match, or
    /// "ok" with the count. Exits with 1 when the chain is broken.
    Verify {
        /// An anchor printed earlier by `audit anchor` (ID:HASH): also prove that the
        /// record it names, and so everything before it, is unchanged.
        #[arg(long)]
        anchor: Option<app::audit::verify::Anchor>,
    },
    /// Verify the chain and print its head as ID:HASH, to keep somewhere the database's
    /// writers cannot reach and give to `audit verify --anchor` later.
    Anchor,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BEHALF_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Minutes without a request after which a session ends.
    #[arg(long, env = "BEHALF_SESSION_IDLE_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub session_idle_minutes: u32,
    /// Hours after sign-in at which a session ends, however active.
    #[arg(long, env = "BEHALF_SESSION_LIFETIME_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub session_lifetime_hours: u32,
    /// Maximum duration of a session on behalf, in minutes (it also ends after the
    /// idle timeout).
    #[arg(long, env = "BEHALF_ON_BEHALF_MAX_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_440))]
    pub on_behalf_max_minutes: u32,
    /// Sign-in attempts one client address may make per minute (the per-account
    /// throttle, five failures then exponential back-off, applies whatever this is).
    #[arg(long, env = "BEHALF_SIGN_IN_PER_IP_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sign_in_per_ip_per_minute: u32,
    /// An origin (`https://app.example`) whose pages may call the JSON API with a
    /// bearer token (CORS). Repeat it, or give a comma-separated list; none by default.
    #[arg(long, env = "BEHALF_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
    /// Password checks that may wait for argon2 behind the running ones (one per
    /// core); when they are all taken, a sign-in gets a fast 429 before any hashing.
    /// At most 256, so that no check waits anywhere near the 10 s after which the
    /// sign-in throttle takes a pending check for a crashed one.
    #[arg(long, env = "BEHALF_ARGON2_QUEUE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub argon2_queue: u32,
    /// Seconds a client has to send a request's headers; a slower one is dropped.
    #[arg(long, env = "BEHALF_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=300))]
    pub header_read_timeout_seconds: u32,
    /// Seconds a request may take before it is answered 503 (a streamed download's body
    /// is not counted).
    #[arg(long, env = "BEHALF_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub request_timeout_seconds: u32,
    /// Connections served at once; more wait in the kernel's backlog.
    #[arg(long, env = "BEHALF_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connections: u32,
    /// How long a one-click login link lasts when its creator does not say, in minutes.
    #[arg(long, env = "BEHALF_ONE_CLICK_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub one_click_minutes: u32,
    /// The longest a one-click login link may last, in minutes (at most seven days).
    #[arg(long, env = "BEHALF_ONE_CLICK_MAX_MINUTES", default_value_t = 10_080, value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub one_click_max_minutes: u32,
    /// Where members reach the server, e.g. `https://behalf.example`. With an https
    /// address the session cookie is `Secure` and named `__Host-behalf_session`, and
    /// every answer carries HSTS.
    #[arg(long, env = "BEHALF_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Acting (not only viewing) on behalf by a role grant needs at least this role:
    /// support, editor or super_user. By default anyone the rule lets start may act;
    /// an explicit proxy login permission always may.
    #[arg(long, env = "BEHALF_ACT_MIN_ROLE", value_parser = parse_act_min_role)]
    pub act_min_role: Option<Role>,
    /// `required`: every member is asked first (a role grant alone lets no one in;
    /// a member grant or an approved access request is needed), whatever their own
    /// setting, which cannot loosen it. `optional` (the default): each member chooses.
    #[arg(long, env = "BEHALF_CONSENT", value_enum, default_value_t = Consent::Optional)]
    pub consent: Consent,
    /// Mail notices through this SMTP server: `smtp://host:25` (plain, for a relay
    /// you run), `smtp://user:password@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:password@host:465`. Unset: no mail is sent. Never logged.
    #[arg(long, env = "BEHALF_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SmtpUrl>,
    /// The sender of those mails, e.g. `Behalf <behalf@example.com>`.
    #[arg(long, env = "BEHALF_MAIL_FROM", default_value = "Behalf <behalf@localhost>")]
    pub mail_from: String,
    /// Trust X-Forwarded-For and X-Forwarded-Proto (only behind a reverse proxy you run).
    #[arg(long, env = "BEHALF_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,
    /// Start without the demo: a new database (one with no members) otherwise gets a
    /// first super user and a small demo to try. BEHALF_DEMO=0 does the same.
    #[arg(long, default_value_t = false)]
    pub no_demo: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, e.g. 127.0.0.1:9100.
    /// Off by default; never on the public address.
    #[arg(long, env = "BEHALF_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// The SMTP address: it may carry a password, so its `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        if text.trim().is_empty() || lower.starts_with("smtp://") || lower.starts_with("smtps://") {
            Ok(SmtpUrl(text.trim().to_string()))
        } else {
            Err("an SMTP address starts with smtp:// or smtps://".into())
        }
    }
}

/// Whether members choose to be asked first, or all are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Consent {
    Optional,
    Required,
}

impl ServeArgs {
    /// SMTP, when configured (an empty `BEHALF_SMTP_URL` is none).
    pub fn mail_settings(&self) -> Option<app::state::MailSettings> {
        let url = self
            .smtp_url
            .as_ref()
            .map(|url| url.0.trim())
            .filter(|url| !url.is_empty())?;
        Some(app::state::MailSettings {
            smtp_url: url.to_string(),
            from: self.mail_from.trim().to_string(),
        })
    }
}

/// A role that can start a session on behalf by its rank: support, editor, super_user.
fn parse_act_min_role(text: &str) -> Result<Role, String> {
    match Role::parse(text.trim()) {
        Some(role) if role >= Role::Support => Ok(role),
        _ => Err("the least role that may act on behalf is support, editor or super_user".into()),
    }
}

/// `http://host[:port]` or `https://host[:port]`, with no path, query or credentials.
fn parse_public_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    if !url.is_ascii() {
        return Err("give the public URL in ASCII (an international name in its xn-- form)".into());
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("the public URL starts with https:// (or http://)")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err("the public URL is a scheme and a host (and port), like https://behalf.example".into());
    }
    Ok(url.to_string())
}

#[derive(Debug, Args)]
pub struct CreateMemberArgs {
    /// Email address (unique, case-insensitively).
    #[arg(long)]
    pub email: String,
    /// Password (at least 8 characters).
    #[arg(long)]
    pub password: String,
    /// Display name (defaults to the part of the email before the @).
    #[arg(long)]
    pub name: Option<String>,
    /// Role: member, support, editor or super_user. Every role above member gets admin access.
    #[arg(long, default_value = "member")]
    pub role: Role,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many members to create.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub members: u64,
    /// Seed for the generator: the same seed gives the same members.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The password every seeded member gets (hashed once, shared).
    #[arg(long, default_value = "behalf-demo-password")]
    pub password: String,
}

#[derive(Debug, Args)]
pub struct InitAdminArgs {
    /// Email of the super user to create.
    #[arg(long, default_value = "admin@behalf.local")]
    pub email: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// `behalf create-member --email a@b.co --password p`, then `rest`.
    fn create_member(rest: &[&str]) -> Result<Cli, clap::Error> {
        let head = ["behalf", "create-member", "--email", "a@b.co", "--password", "p"];
        Cli::try_parse_from(head.iter().chain(rest))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_documented_commands_parse() {
        let cli = Cli::try_parse_from([
            "behalf",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            "sqlite:x.db",
        ])
        .unwrap();
        assert_eq!(cli.database_url, "sqlite:x.db");
        assert!(matches!(
            cli.command,
            Command::Serve(ServeArgs {
                session_idle_minutes: 30,
                ..
            })
        ));
        let cli = create_member(&["--name", "A", "--role", "super_user"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::CreateMember(CreateMemberArgs {
                role: Role::SuperUser,
                ..
            })
        ));
        let cli = Cli::try_parse_from([
            "behalf",
            "seed",
            "--members",
            "10",
            "--seed",
            "7",
            "--password",
            "pw",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Seed(SeedArgs {
                members: 10,
                seed: 7,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["behalf", "migrate"]).is_ok());
        let cli = Cli::try_parse_from(["behalf", "audit", "verify"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Audit {
                command: AuditCommand::Verify { anchor: None }
            }
        ));
        let anchor = format!("7:{}", "ab".repeat(32));
        let cli = Cli::try_parse_from(["behalf", "audit", "verify", "--anchor", &anchor]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Audit {
                command: AuditCommand::Verify {
                    anchor: Some(app::audit::verify::Anchor { id: 7, .. })
                }
            }
        ));
        assert!(Cli::try_parse_from(["behalf", "audit", "verify", "--anchor", "7:zz"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["behalf", "audit", "anchor"])
                .unwrap()
                .command,
            Command::Audit {
                command: AuditCommand::Anchor
            }
        ));
    }

    #[test]
    fn bad_values_are_refused_with_a_message() {
        let error = create_member(&["--role", "god"]).unwrap_err().to_string();
        assert!(error.contains("unknown role"), "{error}");
        assert!(Cli::try_parse_from(["behalf", "serve", "--addr", "nowhere"]).is_err());
        assert!(Cli::try_parse_from(["behalf", "seed", "--members", "0"]).is_err());
        for bad in [
            "behalf.example",
            "https://",
            "https://a.example/path",
            "https://u@a.example",
            "ftp://a",
            "http://é.example",
        ] {
            assert!(
                Cli::try_parse_from(["behalf", "serve", "--public-url", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_act_min_role_is_a_role_that_can_start() {
        assert_eq!(parse_act_min_role("editor"), Ok(Role::Editor));
        assert_eq!(parse_act_min_role("super_user"), Ok(Role::SuperUser));
        assert!(parse_act_min_role("member").is_err());
        assert!(parse_act_min_role("admin").is_err());
    }

    #[test]
    fn the_public_url_is_a_scheme_and_a_host() {
        assert_eq!(
            parse_public_url("https://behalf.example/").unwrap(),
            "https://behalf.example"
        );
        assert_eq!(
            parse_public_url("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
    }
}
