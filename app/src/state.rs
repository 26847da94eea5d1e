//! What every request handler and server function can reach (server only).

use std::{net::IpAddr, num::NonZeroU32, sync::Arc};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{
    audit_writer::{Folder, GroupCommit, ViewTrail},
    clock::Clock,
    db::Db,
    password::hasher::PasswordHasher,
    presence::Presence,
    secret::LinkKey,
};

/// How sessions behave; set from flags and `BEHALF_*` variables by the server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A session ends after this long without a request (milliseconds).
    pub session_idle_timeout: i64,
    /// A session ends this long after it started, whatever happens (milliseconds).
    pub session_lifetime: i64,
    /// A session on behalf ends this long after it started (milliseconds).
    pub on_behalf_max_duration: i64,
    /// Sign-in attempts one client address may make per minute (and at once).
    pub sign_in_per_ip_per_minute: u32,
    /// Origins allowed to call the JSON API from a browser (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// A request not answered within this many seconds gets 503.
    pub request_timeout_seconds: u64,
    /// Password checks that may wait for argon2 behind the running ones; past that,
    /// a fast 429 (see `PasswordHasher::reserve`).
    pub argon2_queue: usize,
    /// A one-click login link lasts this long unless its creator asks otherwise…
    pub one_click_default_minutes: i64,
    /// …and never longer than this.
    pub one_click_max_minutes: i64,
    /// Where members reach the server (`https://behalf.example`), when set. An https
    /// address makes the session cookie `Secure` and `__Host-` prefixed, and turns on
    /// HSTS, whatever the request says.
    pub public_url: Option<String>,
    /// Acting (not only viewing) on behalf by a role grant needs at least this role
    /// (`--act-min-role`); `None`: anyone the rule lets start may act.
    pub act_min_role: Option<crate::role::Role>,
    /// `--consent required`: every member asks first, whatever their setting.
    pub consent_required: bool,
    /// Where notices are mailed from, when SMTP is configured (`BEHALF_SMTP_URL`,
    /// `BEHALF_MAIL_FROM`); `None`: no mail is sent.
    pub mail: Option<MailSettings>,
}

/// SMTP, for notices by mail.
#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (or `smtps://`, with credentials): a secret, never logged.
    pub smtp_url: String,
    pub from: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &"[redacted]")
            .field("from", &self.from)
            .finish()
    }
}

impl Settings {
    /// Whether members reach the server over https (by `public_url`).
    pub fn public_https(&self) -> bool {
        self.public_url
            .as_deref()
            .and_then(|url| url.get(..8))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }
}

/// The longest a one-click link may ever last: seven days.
pub const ONE_CLICK_LONGEST_MINUTES: i64 = 7 * 24 * 60;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            session_idle_timeout: 30 * crate::clock::MINUTE,
            session_lifetime: 12 * crate::clock::HOUR,
            on_behalf_max_duration: 30 * crate::clock::MINUTE,
            sign_in_per_ip_per_minute: 60,
            cors_origins: Vec::new(),
            request_timeout_seconds: 30,
            argon2_queue: crate::password::hasher::DEFAULT_QUEUE,
            one_click_default_minutes: 15,
            one_click_max_minutes: ONE_CLICK_LONGEST_MINUTES,
            public_url: None,
            act_min_role: None,
            consent_required: false,
            mail: None,
        }
    }
}

/// Sign-in attempts per client address (in memory, per instance: the per-account
/// throttle, which matters more, lives in the database).
pub type IpLimiter = DefaultKeyedRateLimiter<IpAddr>;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub hasher: Arc<PasswordHasher>,
    pub settings: Arc<Settings>,
    pub sign_in_per_ip: Arc<IpLimiter>,
    /// The key one-click links are hashed with (see `secret`).
    pub link_key: Arc<LinkKey>,
    /// Repeated identical refusals, folded before they reach the audit chain.
    pub refusals: Arc<Folder>,
    /// The batcher that lets concurrent changes share one COMMIT (PostgreSQL only;
    /// see `audit_writer::GroupCommit`).
    pub group_commit: Arc<GroupCommit>,
    /// What was viewed on behalf, noted by the pipeline and written behind it.
    pub trail: Arc<ViewTrail>,
    /// Wakes the members' live presence streams (and, on PostgreSQL, other
    /// instances' through `LISTEN/NOTIFY`).
    pub presence: Arc<Presence>,
}

impl AppState {
    pub fn new(db: Db, clock: Clock, hasher: PasswordHasher, settings: Settings) -> AppState {
        let per_minute = NonZeroU32::new(settings.sign_in_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        AppState {
            group_commit: Arc::new(GroupCommit::new(&db)),
            db,
            clock,
            hasher: Arc::new(hasher.with_queue(settings.argon2_queue)),
            sign_in_per_ip: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            settings: Arc::new(settings),
            link_key: Arc::new(LinkKey::random()),
            refusals: Arc::new(Folder::default()),
            trail: Arc::new(ViewTrail::default()),
            presence: Arc::new(Presence::default()),
        }
    }

    /// The same state with the key loaded from configuration or the database.
    pub fn with_link_key(mut self, key: LinkKey) -> AppState {
        self.link_key = Arc::new(key);
        self
    }
}
