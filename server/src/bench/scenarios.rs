//! The scenarios but the flood (`flood.rs`): what each signs in as, what one operation
//! sends, and the rows it reports. Setting up (signing in, starting the sessions on
//! behalf a row needs) is not timed; a setup that fails is the scenario's error.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use reqwest::Client;
use serde_json::json;

use super::{
    client::{self, SignedIn},
    meter::{drive, Outcome},
    report::Row,
    Bench,
};

/// Sign-ins checked at once for one account: the per-account throttle refuses (429)
/// more than five pending checks of one account, whatever the password.
pub const SIGN_INS_AT_ONCE: usize = 4;

/// Switches at once for the one actor: the re-authentication lockout lets as many
/// checks run at once as could still fail before it locks (five).
pub const SWITCHES_AT_ONCE: usize = 4;

/// The pages `browse` loads in turn.
pub const MEMBER_PAGES: [&str; 2] = ["/", "/account/orders"];

/// The search of the members scenario (a prefix of "Smith", among others).
pub const MEMBERS_SEARCH: &str = "/admin/members?q=smi";

/// What a worker of a row holds: its browser (cookie store) and what the row shares.
#[derive(Clone)]
pub struct Worker {
    pub client: Client,
    pub shared: Arc<Shared>,
    /// The members scenario's place in its search: the next page to load, and how
    /// many pages deep it is.
    pub crawl: Arc<Mutex<(Option<String>, u32)>>,
}

/// What every worker of a row needs.
pub struct Shared {
    pub bench: Bench,
    /// The member the actor acts for.
    pub member_id: i64,
    /// A product of the catalogue, for orders.
    pub product_id: i64,
    /// Operations started, to vary pages and quantities.
    pub turn: AtomicU64,
}

impl Shared {
    pub fn new(bench: &Bench, member_id: i64, product_id: i64) -> Arc<Shared> {
        Arc::new(Shared {
            bench: bench.clone(),
            member_id,
            product_id,
            turn: AtomicU64::new(0),
        })
    }

    /// The next turn (0, 1, 2, …) across the row's workers.
    fn next_turn(&self) -> u64 {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }
}

/// Workers for `clients`, sharing `shared`.
fn workers(clients: Vec<Client>, shared: &Arc<Shared>) -> Vec<Worker> {
    clients
        .into_iter()
        .map(|client| Worker {
            client,
            shared: shared.clone(),
            crawl: Arc::new(Mutex::new((None, 0))),
        })
        .collect()
}

/// `count` browsers, each signed in as `email` (one after another: the per-account
/// throttle counts parallel checks), with the answer of the first sign-in.
pub async fn signed_in(bench: &Bench, email: &str, count: usize) -> Result<(Vec<Client>, SignedIn), String> {
    let mut clients = Vec::with_capacity(count);
    let mut first = None;
    for _ in 0..count.max(1) {
        let browser = client::cookie_client();
        let answer = client::sign_in(&browser, &bench.target, email, &bench.password)
            .await
            .map_err(|error| {
                format!("signing in as {email} failed: {error} (create the account, or give --password / the account options)")
            })?;
        first.get_or_insert(answer);
        clients.push(browser);
    }
    Ok((clients, first.expect("at least one sign-in")))
}

/// Starts a session on behalf of `member_id` in each of `clients` (the actor's
/// sessions), one after another.
async fn start_each(bench: &Bench, clients: &[Client], member_id: i64) -> Result<(), String> {
    for browser in clients {
        client::start_on_behalf(browser, &bench.target, member_id, &bench.password)
            .await
            .map_err(|error| {
                format!(
                    "{} could not log in on behalf of member {member_id}: {error}",
                    bench.actor
                )
            })?;
    }
    Ok(())
}

/// Leaves the sessions on behalf of `clients` after a row (untimed; a failure is
/// only reported).
async fn leave_each(bench: &Bench, clients: &[Client]) {
    for browser in clients {
        if let Err(error) = client::leave(browser, &bench.target).await {
            eprintln!("note: leaving a session on behalf after the row: {error}");
        }
    }
}

/// The member's ID and a product of the catalogue, as the member sees them.
pub async fn member_and_product(bench: &Bench) -> Result<(i64, i64), String> {
    let browser = client::bare_client();
    let member = client::sign_in(&browser, &bench.target, &bench.member, &bench.password)
        .await
        .map_err(|error| format!("signing in as {} failed: {error}", bench.member))?;
    let product = client::first_product(&browser, &bench.target, &member.token).await?;
    Ok((member.member_id, product))
}

/// `signin`: `POST /api/v1/login` with the member's right password, from a few
/// clients at once (`SIGN_INS_AT_ONCE`). Each right password clears the account's
/// throttle, so none is refused unless the server's per-address limit is reached.
pub async fn signin(bench: &Bench) -> Result<Vec<Row>, String> {
    signed_in(bench, &bench.member, 1).await?;
    let shared = Shared::new(bench, 0, 0);
    let clients = vec![client::bare_client(); bench.budget.connections.min(SIGN_INS_AT_ONCE)];
    let row = drive(
        "signin",
        &bench.budget,
        workers(clients, &shared),
        |worker| async move {
            let bench = &worker.shared.bench;
            let answer = client::sign_in(&worker.client, &bench.target, &bench.member, &bench.password).await;
            Outcome::of(answer.map(drop))
        },
    )
    .await;
    Ok(vec![row])
}

/// `browse`: the member's home page and orders page in turn, each worker signed in as
/// the member with a cookie; then `browse_on_behalf`: the same pages, each worker an
/// actor's session on behalf of the member (every page must show the banner).
pub async fn browse(bench: &Bench) -> Result<Vec<Row>, String> {
    let connections = bench.budget.connections;
    let (members, member) = signed_in(bench, &bench.member, connections).await?;
    let shared = Shared::new(bench, member.member_id, 0);
    let browse = drive(
        "browse",
        &bench.budget,
        workers(members, &shared),
        |worker| async move {
            let path = MEMBER_PAGES[(worker.shared.next_turn() % 2) as usize];
            Outcome::of(
                client::page(&worker.client, &worker.shared.bench.target, path)
                    .await
                    .map(drop),
            )
        },
    )
    .await;

    let (actors, _) = signed_in(bench, &bench.actor, connections).await?;
    start_each(bench, &actors, member.member_id).await?;
    let on_behalf = drive(
        "browse_on_behalf",
        &bench.budget,
        workers(actors.clone(), &shared),
        |worker| async move {
            let path = MEMBER_PAGES[(worker.shared.next_turn() % 2) as usize];
            let target = &worker.shared.bench.target;
            Outcome::of(client::page_on_behalf(&worker.client, target, path).await)
        },
    )
    .await;
    leave_each(bench, &actors).await;
    Ok(vec![browse, on_behalf])
}

/// `members`: the admin's members search (`/admin/members?q=smi`), then its Next link
/// page after page, `--depth` pages deep, then the search again; one page per
/// operation, each worker its own place in the search.
pub async fn members(bench: &Bench) -> Result<Vec<Row>, String> {
    let (admins, _) = signed_in(bench, &bench.admin, 1).await?;
    let first = client::page(&admins[0], &bench.target, MEMBERS_SEARCH).await?;
    if !first.contains("aria-label=\"Members\"") {
        return Err(format!(
            "{} sees no members list at {MEMBERS_SEARCH}: is it an account with admin access?",
            bench.admin
        ));
    }
    let shared = Shared::new(bench, 0, 0);
    let clients = vec![admins[0].clone(); bench.budget.connections];
    let row = drive(
        "members",
        &bench.budget,
        workers(clients, &shared),
        |worker| async move {
            let bench = &worker.shared.bench;
            let (next, depth) = worker.crawl.lock().expect("not poisoned").clone();
            let path = next.unwrap_or_else(|| MEMBERS_SEARCH.to_string());
            let mut outcome = Outcome::default();
            let html = outcome.add(client::page(&worker.client, &bench.target, &path).await.and_then(
                |html| {
                    if html.contains("aria-label=\"Members\"") {
                        Ok(html)
                    } else {
                        Err(format!("GET {path}: no members list on the page"))
                    }
                },
            ));
            let next = html
                .and_then(|html| client::next_link(&html))
                .filter(|_| depth + 1 < bench.depth);
            let depth = if next.is_some() { depth + 1 } else { 0 };
            *worker.crawl.lock().expect("not poisoned") = (next, depth);
            outcome
        },
    )
    .await;
    Ok(vec![row])
}

/// `switch`: one whole switch per operation, from the actor's own session: start on
/// behalf of the member (password and reason), the home and orders pages as the
/// member, one order, leave. Timed as one; five requests.
pub async fn switch(bench: &Bench) -> Result<Vec<Row>, String> {
    let (member_id, product_id) = member_and_product(bench).await?;
    let count = bench.budget.connections.min(SWITCHES_AT_ONCE);
    let (actors, _) = signed_in(bench, &bench.actor, count).await?;
    let shared = Shared::new(bench, member_id, product_id);
    let row = drive(
        "switch",
        &bench.budget,
        workers(actors, &shared),
        |worker| async move {
            let (browser, shared) = (&worker.client, &worker.shared);
            let (bench, target) = (&shared.bench, &shared.bench.target);
            let mut outcome = Outcome::default();
            let started = client::start_on_behalf(browser, target, shared.member_id, &bench.password).await;
            if outcome.add(started).is_none() {
                return outcome;
            }
            for path in MEMBER_PAGES {
                outcome.add(client::page_on_behalf(browser, target, path).await);
            }
            outcome.add(client::place_order(browser, target, shared.product_id, 1).await);
            outcome.add(client::leave(browser, target).await);
            outcome
        },
    )
    .await;
    Ok(vec![row])
}

/// `orders`: one session on behalf of the member per connection (the actor signed in
/// that many times), all placing orders at once (`/api/orders/place`, quantities 1 to
/// 9); reports orders per second. Each order is an audit record on the one chain.
pub async fn orders(bench: &Bench) -> Result<Vec<Row>, String> {
    let (member_id, product_id) = member_and_product(bench).await?;
    let (actors, _) = signed_in(bench, &bench.actor, bench.budget.connections).await?;
    start_each(bench, &actors, member_id).await?;
    let shared = Shared::new(bench, member_id, product_id);
    let mut row = drive(
        "orders",
        &bench.budget,
        workers(actors.clone(), &shared),
        |worker| async move {
            let shared = &worker.shared;
            let quantity = (shared.next_turn() % 9 + 1) as u32;
            let target = &shared.bench.target;
            Outcome::of(client::place_order(&worker.client, target, shared.product_id, quantity).await)
        },
    )
    .await;
    leave_each(bench, &actors).await;
    let placed = row.operations - row.errors;
    let rate = (placed as f64 / row.seconds.max(f64::EPSILON) * 10.0).round() / 10.0;
    row.extra.insert("orders_placed".into(), json!(placed));
    row.extra.insert("orders_per_second".into(), json!(rate));
    Ok(vec![row])
}
