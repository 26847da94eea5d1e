//! Metrics for operators: Prometheus text at `GET /metrics` on an address of its own
//! (`--metrics-addr`), never on the public one.
//!
//! Without `--metrics-addr` no recorder is installed: every `metrics::counter!` of the
//! app and the server then finds none and does nothing, and the request layer below
//! hands each request straight on (one relaxed atomic load). With it, [`start`]
//! installs the Prometheus recorder, binds the address and serves `GET /metrics` there
//! from a router of its own (anything else: 404), through the app's accept loop
//! (`listen.rs`), until [`MetricsServer::stop`].
//!
//! What is counted, and where:
//! - every answered request, by route template, method and status, and its latency
//!   ([`layer`], added once in `router.rs`);
//! - every error answer, by its stable code ([`count_refusal`], called where an
//!   `AppError` becomes a response: `errors.rs` and `server_fns.rs`);
//! - sign-in throttle hits (`app::throttle`) and audit records appended
//!   (`app::audit_writer`), by `metrics::counter!` in the lower layer;
//! - the live sessions on behalf, counted in the database at each scrape.
//!
//! Every label value is bounded and none comes from what a client typed: routes are
//! the router's own templates (or `unmatched`), methods the standard ones (or
//! `other`), statuses three digits, codes and actions the app's own `&'static str`s.

use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        LazyLock, OnceLock, RwLock,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use app::{clock::Millis, db::Db, error::AppError, state::AppState};
use axum::{
    extract::{MatchedPath, State},
    http::{header, Method, Request, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower::{Layer, Service};

use crate::listen;

/// Requests answered, by `route`, `method` and `status`.
pub const REQUESTS: &str = "behalf_http_requests_total";
/// Time to the response's head, by `route` and `method` (a histogram).
pub const REQUEST_DURATION: &str = "behalf_http_request_duration_seconds";
/// Error answers, by `code`.
pub const REFUSALS: &str = "behalf_refusals_total";
/// Sign-in throttle hits, by `kind` (counted in `app::throttle`).
pub const THROTTLE_HITS: &str = "behalf_throttle_hits_total";
/// Audit records appended, by `action` (counted in `app::audit_writer`).
pub const AUDIT_RECORDS: &str = "behalf_audit_records_total";
/// Sessions on behalf live now, in the whole database (set at each scrape).
pub const ON_BEHALF_LIVE: &str = "behalf_on_behalf_sessions_live";

/// The latency buckets, in seconds: half a millisecond to five seconds.
const DURATION_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The route of every server function (`router.rs`); a registered one is labelled
/// with its own path instead.
const SERVER_FN_ROUTE: &str = "/api/{*fn_name}";

/// More route templates than any router of ours has: past it, `other`.
const MAX_ROUTES: usize = 1024;

/// The scrape's database count gives up after this long (the gauge is then NaN).
const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// Set once the recorder is installed; until then the request layer does nothing.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process records metrics (it was started with `--metrics-addr`).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the process-wide Prometheus recorder and describes the metrics. Once per
/// process: a second call fails.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_string()), &DURATION_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot start the metrics recorder: {e}"))?;
    metrics::describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION,
        "Seconds from a request's arrival to its response's head, by route template and method."
    );
    metrics::describe_counter!(
        REFUSALS,
        "Error answers (the one wire error shape or an error page), by code."
    );
    metrics::describe_counter!(
        THROTTLE_HITS,
        "Sign-in attempts held back by a throttle, by kind."
    );
    metrics::describe_counter!(
        AUDIT_RECORDS,
        "Audit records appended, by action (a transaction that rolled back later may be counted)."
    );
    metrics::describe_gauge!(
        ON_BEHALF_LIVE,
        "Sessions on behalf live now, in the whole database (every instance reports the same figure)."
    );
    ENABLED.store(true, Ordering::Relaxed);
    Ok(handle)
}

/// Counts an error answer by its stable code (nothing without a recorder).
pub fn count_refusal(error: &AppError) {
    if enabled() {
        metrics::counter!(REFUSALS, "code" => error.code()).increment(1);
    }
}

// ---- the request layer ------------------------------------------------------------

/// The request layer: counts each answered request and records its latency, by the
/// route's template. Per request, when metrics are on: the template looked up among
/// those already seen (a read lock), a clock read, and at the response one counter and
/// one histogram sample — every label a `&'static str`. When off: one atomic load.
/// A request whose client went away before the answer is not counted.
pub fn layer() -> RequestMetrics {
    RequestMetrics
}

/// See [`layer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMetrics;

impl<S> Layer<S> for RequestMetrics {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Measured<S> {
        Measured { inner }
    }
}

/// A service with its requests measured (see [`layer`]).
#[derive(Clone, Debug)]
pub struct Measured<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Measured<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = MeasuredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = enabled().then(|| Started {
            route: route_label(&request),
            method: method_label(request.method()),
            at: Instant::now(),
        });
        MeasuredFuture {
            inner: self.inner.call(request),
            started,
        }
    }
}

/// The inner service's answer, counted when it comes.
pub struct MeasuredFuture<F> {
    inner: F,
    started: Option<Started>,
}

impl<F, E> Future for MeasuredFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let output = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if let (Some(started), Ok(response)) = (self.started.take(), &output) {
            started.finish(response.status());
        }
        Poll::Ready(output)
    }
}

/// A request's labels and arrival.
struct Started {
    route: &'static str,
    method: &'static str,
    at: Instant,
}

impl Started {
    fn finish(self, status: StatusCode) {
        let seconds = self.at.elapsed().as_secs_f64();
        let (route, method) = (self.route, self.method);
        metrics::counter!(REQUESTS, "route" => route, "method" => method, "status" => status_label(status))
            .increment(1);
        metrics::histogram!(REQUEST_DURATION, "route" => route, "method" => method).record(seconds);
    }
}

/// The route's template (`/api/v1/members/{id}`), a server function's own path when it
/// is registered, `/pkg` for the built files (a nested service: axum gives it no
/// `MatchedPath`), or `unmatched` (the not-found fallback).
fn route_label<B>(request: &Request<B>) -> &'static str {
    match request.extensions().get::<MatchedPath>() {
        Some(matched) if matched.as_str() == SERVER_FN_ROUTE => server_fn_label(request.uri().path()),
        Some(matched) => intern(matched.as_str()),
        None if request.uri().path().starts_with("/pkg/") => "/pkg",
        None => "unmatched",
    }
}

/// A registered server function's path (from the registry, never from the request).
fn server_fn_label(path: &str) -> &'static str {
    static REGISTERED: OnceLock<HashSet<&'static str>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            leptos::server_fn::axum::server_fn_paths()
                .map(|(path, _)| path)
                .collect()
        })
        .get(path)
        .copied()
        .unwrap_or(SERVER_FN_ROUTE)
}

/// A route template as a `&'static str`: each is leaked once, the first time it is
/// seen. They are the router's own templates, so there are as many as it has routes.
fn intern(template: &str) -> &'static str {
    static SEEN: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Some(seen) = SEEN
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(template)
    {
        return seen;
    }
    let mut seen = SEEN.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = seen.get(template) {
        return known;
    }
    if seen.len() >= MAX_ROUTES {
        return "other";
    }
    let leaked: &'static str = Box::leak(template.into());
    seen.insert(leaked);
    leaked
}

/// The standard methods by name; any other is `other`.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// "100" to "999", three bytes each: a status's label without formatting one.
static STATUS_DIGITS: [u8; 2700] = status_digits();

const fn status_digits() -> [u8; 2700] {
    let mut digits = [0u8; 2700];
    let mut i = 0;
    while i < 900 {
        let code = i + 100;
        digits[i * 3] = b'0' + (code / 100) as u8;
        digits[i * 3 + 1] = b'0' + (code / 10 % 10) as u8;
        digits[i * 3 + 2] = b'0' + (code % 10) as u8;
        i += 1;
    }
    digits
}

/// A status as its three digits.
fn status_label(status: StatusCode) -> &'static str {
    let start = usize::from(status.as_u16()).clamp(100, 999) * 3 - 300;
    std::str::from_utf8(&STATUS_DIGITS[start..start + 3]).unwrap_or("other")
}

// ---- the scrape ---------------------------------------------------------------------

/// The count behind the live sessions gauge (`$1`: now).
pub const LIVE_ON_BEHALF: &str =
    "SELECT COUNT(*) FROM sessions WHERE parent_id IS NOT NULL AND ended_at IS NULL \
     AND idle_expires_at > $1 AND absolute_expires_at > $1";

/// How many sessions on behalf are live at `now` in the whole database (not ended, not
/// expired): one COUNT over the partial index of unended sessions on behalf
/// (`sessions_one_live_on_behalf`).
pub async fn live_on_behalf(db: &Db, now: Millis) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = match db {
        Db::Sqlite(pool) => sqlx::query_as(LIVE_ON_BEHALF).bind(now).fetch_one(pool).await?,
        Db::Postgres(pool) => sqlx::query_as(LIVE_ON_BEHALF).bind(now).fetch_one(pool).await?,
    };
    Ok(count)
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    app: AppState,
}

/// The metrics address's whole router: `GET /metrics`, and 404 for anything else.
fn scrape_router(handle: PrometheusHandle, app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape).fallback(not_found))
        .fallback(not_found)
        .with_state(Scrape { handle, app })
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// Counts the live sessions on behalf (NaN if the database does not answer), then
/// renders every metric.
async fn scrape(State(scrape): State<Scrape>) -> Response {
    let now = scrape.app.clock.now();
    let live = match tokio::time::timeout(COUNT_TIMEOUT, live_on_behalf(&scrape.app.db, now)).await {
        Ok(Ok(count)) => count as f64,
        Ok(Err(error)) => {
            tracing::error!(%error, "metrics: could not count the live sessions on behalf");
            f64::NAN
        }
        Err(_) => {
            tracing::error!("metrics: counting the live sessions on behalf timed out");
            f64::NAN
        }
    };
    metrics::gauge!(ON_BEHALF_LIVE).set(live);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        scrape.handle.render(),
    )
        .into_response()
}

// ---- the listener -------------------------------------------------------------------

/// The metrics listener, running until [`MetricsServer::stop`].
pub struct MetricsServer {
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl MetricsServer {
    /// Stops serving metrics (open scrapes get two seconds to finish).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.upkeep.abort();
        let _ = self.server.await;
    }
}

/// With `addr`: installs the recorder and serves `GET /metrics` on `addr` (refused if
/// it is the public address `public`); warns when `addr` is not a loopback address.
/// Prints `Metrics on http://ADDR/metrics` with the port actually bound.
pub async fn start(
    addr: Option<SocketAddr>,
    public: SocketAddr,
    app: AppState,
) -> Result<Option<MetricsServer>, String> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let same_ip = addr.ip() == public.ip() || addr.ip().is_unspecified() || public.ip().is_unspecified();
    if addr.port() != 0 && addr.port() == public.port() && same_ip {
        return Err(format!(
            "--metrics-addr ({addr}) must not be the public address ({public}): metrics are never served there"
        ));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let handle = install()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %local,
            "metrics are served on a non-loopback address: let only your monitoring system reach it (firewall)"
        );
    }
    tracing::info!("metrics on http://{local}/metrics");
    println!("Metrics on http://{local}/metrics");
    let upkeep = tokio::spawn(upkeep(handle.clone()));
    let (stop, stopped) = oneshot::channel::<()>();
    let limits = listen::Limits {
        header_read_timeout: Duration::from_secs(10),
        max_connections: 16,
        shutdown_grace: Duration::from_secs(2),
    };
    let router = scrape_router(handle, app);
    let server = tokio::spawn(listen::serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    Ok(Some(MetricsServer { stop, server, upkeep }))
}

/// Every five seconds, moves the latency samples into their buckets (they would pile
/// up between scrapes otherwise).
async fn upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_their_three_digits() {
        for code in [100u16, 200, 302, 404, 429, 503, 999] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status_label(status), code.to_string());
        }
    }

    #[test]
    fn only_standard_methods_are_named() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::TRACE), "other");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn templates_are_interned_once() {
        let first = intern("/api/v1/members/{id}");
        let again = intern(&String::from("/api/v1/members/{id}"));
        assert!(std::ptr::eq(first, again));
    }

    #[test]
    fn requests_without_a_matched_route_are_unmatched() {
        let request = Request::builder().uri("/secret/token-123").body(()).unwrap();
        assert_eq!(route_label(&request), "unmatched");
        let built = Request::builder().uri("/pkg/behalf.wasm").body(()).unwrap();
        assert_eq!(route_label(&built), "/pkg");
        // An unknown server function is labelled by the route, never by its path.
        assert_eq!(server_fn_label("/api/no_such_fn_123"), SERVER_FN_ROUTE);
    }
}
