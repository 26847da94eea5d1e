//! `flood`: bursts of wrong-password sign-ins, all sent at once, while signed-in
//! members keep loading their home page. Reports the pages' latency during the
//! bursts (`flood`) and the refusals (`flood_signin`: how many were checked, 401, and
//! how many refused at once because the argon2 line was full, 429).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use reqwest::Client;
use serde_json::json;

use super::{
    client,
    meter::{Meter, Outcome, Tally},
    report::{Percentiles, Row},
    scenarios::signed_in,
    Bench,
};

/// The page the members load during the flood.
const PAGE: &str = "/";

/// What the wrong-password sign-ins of the flood got back.
#[derive(Debug, Default)]
struct Refusals {
    tally: Tally,
    checked: u64,
    refused: u64,
}

impl Refusals {
    /// Counts one sign-in's answer: 401 and 429 are the expected refusals, anything
    /// else (or no answer) an error.
    fn record(&mut self, elapsed: Duration, answer: Result<u16, String>) {
        let outcome = match answer {
            Ok(401) => {
                self.checked += 1;
                Outcome::ok()
            }
            Ok(429) => {
                self.refused += 1;
                Outcome::ok()
            }
            Ok(status) => Outcome::of(Err(format!(
                "POST /api/v1/login with a wrong password: {status}, not 401 or 429"
            ))),
            Err(error) => Outcome::of(Err(error)),
        };
        self.tally.record(elapsed, outcome);
    }
}

/// Sends `count` wrong-password sign-ins at once, each to an email no one has (so no
/// real account is locked, and each is throttled on its own), and waits for all.
async fn burst(bench: &Bench, attacker: &Client, number: u64, count: usize, refusals: &mut Refusals) {
    let attempts: Vec<_> = (0..count)
        .map(|n| {
            let (attacker, target) = (attacker.clone(), bench.target.clone());
            let email = format!("flood-{}-{number}-{n}@bench.invalid", std::process::id());
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = client::wrong_sign_in(&attacker, &target, &email).await;
                (started.elapsed(), answer)
            })
        })
        .collect();
    for attempt in attempts {
        match attempt.await {
            Ok((elapsed, answer)) => refusals.record(elapsed, answer),
            Err(error) => refusals.record(Duration::ZERO, Err(format!("a sign-in task stopped: {error}"))),
        }
    }
}

/// Each member loads `PAGE` again and again while `flooding` holds and the row's
/// budget lasts; returns what they measured.
fn readers(
    bench: &Bench,
    members: &[Client],
    meter: &Arc<Meter>,
    flooding: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    members
        .iter()
        .map(|member| {
            let (member, target) = (member.clone(), bench.target.clone());
            let (meter, flooding) = (meter.clone(), flooding.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while flooding.load(Ordering::Relaxed) && meter.claim() {
                    let started = Instant::now();
                    let outcome = Outcome::of(client::page(&member, &target, PAGE).await.map(drop));
                    meter.progress(&outcome);
                    tally.record(started.elapsed(), outcome);
                }
                tally
            })
        })
        .collect()
}

/// `flood`: burst after burst of `--flood-burst` wrong sign-ins while one signed-in
/// member per connection loads pages, until the row's time or page loads run out.
pub async fn flood(bench: &Bench) -> Result<Vec<Row>, String> {
    let (members, _) = signed_in(bench, &bench.member, bench.budget.connections).await?;
    let attacker = client::bare_client();
    let meter = Meter::start("flood", &bench.budget);
    let ticker = meter.ticker(bench.budget.server_pid);
    let mut pages = Tally::default();
    let mut refusals = Refusals::default();
    let mut bursts = 0;
    while !meter.is_over() {
        let flooding = Arc::new(AtomicBool::new(true));
        let reading = readers(bench, &members, &meter, &flooding);
        burst(bench, &attacker, bursts, bench.flood_burst, &mut refusals).await;
        bursts += 1;
        flooding.store(false, Ordering::Relaxed);
        for reader in reading {
            match reader.await {
                Ok(tally) => pages.merge(tally),
                Err(error) => pages.record(
                    Duration::ZERO,
                    Outcome::of(Err(format!("a reader stopped: {error}"))),
                ),
            }
        }
    }
    ticker.abort();
    let mut page_row = meter.finish(pages, bench.budget.server_pid);
    page_row.extra.insert("bursts".into(), json!(bursts));
    page_row
        .extra
        .insert("wrong_sign_ins".into(), json!(refusals.tally.operations));
    page_row
        .extra
        .insert("refused_401".into(), json!(refusals.checked));
    page_row
        .extra
        .insert("refused_429".into(), json!(refusals.refused));
    let signin_row = Row {
        name: "flood_signin".into(),
        operations: refusals.tally.operations,
        requests: refusals.tally.requests,
        errors: refusals.tally.errors,
        seconds: page_row.seconds,
        latency: Percentiles::of(&refusals.tally.histogram),
        rss_kib: page_row.rss_kib,
        extra: Default::default(),
        first_error: refusals.tally.first_error.take(),
    };
    Ok(vec![page_row, signin_row])
}
