//! Running one row: workers repeat an operation until the row's time is up or its
//! operations are all claimed, each keeping its own latency histogram; a progress bar
//! on stderr shows how far the row is, and the server's memory is sampled meanwhile.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Map;

use super::{
    procfs,
    report::{new_histogram, Percentiles, Row},
};

/// How long, and how much, each row may run.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub duration: Duration,
    /// Operations at most.
    pub operations: u64,
    /// Workers at once (the scenario may use fewer).
    pub connections: usize,
    /// The server's process, for its memory.
    pub server_pid: Option<u32>,
}

/// What one operation did: the requests it sent, how many of them failed, and the
/// first failure in words.
#[derive(Debug, Default)]
pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub error: Option<String>,
}

impl Outcome {
    /// One request that got what it expected.
    pub fn ok() -> Outcome {
        Outcome {
            requests: 1,
            ..Outcome::default()
        }
    }

    /// One request, and the result of checking its answer.
    pub fn of(result: Result<(), String>) -> Outcome {
        let mut outcome = Outcome::default();
        outcome.add(result);
        outcome
    }

    /// Counts one more request, and its failure if it failed.
    pub fn add<T>(&mut self, result: Result<T, String>) -> Option<T> {
        self.requests += 1;
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors += 1;
                self.error.get_or_insert(error);
                None
            }
        }
    }
}

/// What a worker (or all of them) measured.
#[derive(Debug)]
pub struct Tally {
    /// Latencies of the operations without errors, in microseconds.
    pub histogram: Histogram<u64>,
    pub operations: u64,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            histogram: new_histogram(),
            operations: 0,
            requests: 0,
            errors: 0,
            first_error: None,
        }
    }
}

impl Tally {
    /// Counts one operation that took `elapsed`.
    pub fn record(&mut self, elapsed: Duration, outcome: Outcome) {
        self.operations += 1;
        self.requests += outcome.requests;
        self.errors += outcome.errors;
        if outcome.errors == 0 {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
            self.histogram.saturating_record(micros);
        }
        if self.first_error.is_none() {
            self.first_error = outcome.error;
        }
    }

    /// Adds another worker's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms of the same bounds");
        self.operations += other.operations;
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The clock and the counters of a row while it runs, shared by its workers.
pub struct Meter {
    name: String,
    started: Instant,
    deadline: Instant,
    cap: u64,
    claimed: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    peak_rss: Mutex<Option<u64>>,
    bar: ProgressBar,
}

impl Meter {
    /// Starts the clock of row `name` and its progress bar.
    pub fn start(name: &str, budget: &Budget) -> Arc<Meter> {
        let bar = ProgressBar::with_draw_target(Some(1_000), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:<18} [{elapsed_precise}] {wide_bar} {msg}")
                .expect("a valid template"),
        );
        bar.set_prefix(name.to_string());
        let started = Instant::now();
        Arc::new(Meter {
            name: name.to_string(),
            started,
            deadline: started + budget.duration,
            cap: budget.operations,
            claimed: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            peak_rss: Mutex::new(None),
            bar,
        })
    }

    /// Whether one more operation may start (and if so, it is counted as claimed).
    pub fn claim(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        self.claimed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether the row's time or operations are used up.
    pub fn is_over(&self) -> bool {
        Instant::now() >= self.deadline || self.claimed.load(Ordering::Relaxed) >= self.cap
    }

    /// Counts an operation's requests for the progress bar.
    pub fn progress(&self, outcome: &Outcome) {
        self.requests.fetch_add(outcome.requests, Ordering::Relaxed);
        self.errors.fetch_add(outcome.errors, Ordering::Relaxed);
    }

    /// Redraws the bar (how much of the time or of the operations is used, whichever
    /// is more) and samples the server's memory.
    fn tick(&self, server_pid: Option<u32>) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let total = (self.deadline - self.started).as_secs_f64().max(f64::EPSILON);
        let by_time = elapsed / total;
        let by_count = self.claimed.load(Ordering::Relaxed) as f64 / self.cap.max(1) as f64;
        self.bar
            .set_position((by_time.max(by_count).min(1.0) * 1_000.0) as u64);
        self.bar.set_message(format!(
            "{} requests, {} errors",
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed)
        ));
        if let Some(kib) = server_pid.and_then(procfs::rss_kib) {
            let mut peak = self.peak_rss.lock().expect("not poisoned");
            *peak = Some(peak.map_or(kib, |p| p.max(kib)));
        }
    }

    /// Redraws the bar every 100 ms until the row ends; returns the task to abort.
    pub fn ticker(self: &Arc<Self>, server_pid: Option<u32>) -> tokio::task::JoinHandle<()> {
        let meter = self.clone();
        tokio::spawn(async move {
            loop {
                meter.tick(server_pid);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// Ends the bar and turns `tally` into the row; the time is from the start to now.
    pub fn finish(&self, tally: Tally, server_pid: Option<u32>) -> Row {
        let seconds = self.started.elapsed().as_secs_f64();
        self.tick(server_pid);
        self.bar.finish_and_clear();
        Row {
            name: self.name.clone(),
            operations: tally.operations,
            requests: tally.requests,
            errors: tally.errors,
            seconds,
            latency: Percentiles::of(&tally.histogram),
            rss_kib: *self.peak_rss.lock().expect("not poisoned"),
            extra: Map::new(),
            first_error: tally.first_error,
        }
    }
}

/// Runs row `name`: one worker per item of `sessions`, each repeating `operation` on
/// its own session until the budget is spent. An operation's latency is recorded
/// when none of its requests failed; failures are counted, never fatal.
pub async fn drive<S, F, Fut>(name: &str, budget: &Budget, sessions: Vec<S>, operation: F) -> Row
where
    S: Clone + Send + 'static,
    F: Fn(S) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let meter = Meter::start(name, budget);
    let ticker = meter.ticker(budget.server_pid);
    let operation = Arc::new(operation);
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let (meter, operation) = (meter.clone(), operation.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while meter.claim() {
                    let started = Instant::now();
                    let outcome = operation(session.clone()).await;
                    meter.progress(&outcome);
                    tally.record(started.elapsed(), outcome);
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(done) => tally.merge(done),
            Err(error) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert(format!("a worker stopped: {error}"));
            }
        }
    }
    ticker.abort();
    meter.finish(tally, budget.server_pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(operations: u64, seconds: u64) -> Budget {
        Budget {
            duration: Duration::from_secs(seconds),
            operations,
            connections: 4,
            server_pid: None,
        }
    }

    #[tokio::test]
    async fn the_operations_cap_is_never_exceeded_and_errors_are_counted() {
        let row = drive("test", &budget(25, 60), vec![(); 4], |()| async {
            let mut outcome = Outcome::ok();
            outcome.add::<()>(Err("GET /: 500 internal".into()));
            outcome
        })
        .await;
        assert_eq!(row.operations, 25);
        assert_eq!(row.requests, 50);
        assert_eq!(row.errors, 25);
        assert_eq!(row.latency, None, "failed operations are not timed");
        assert_eq!(row.first_error.as_deref(), Some("GET /: 500 internal"));
    }

    #[tokio::test]
    async fn the_duration_ends_a_row_that_the_cap_would_not() {
        let started = Instant::now();
        let row = drive("test", &budget(u64::MAX, 1), vec![(); 2], |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Outcome::ok()
        })
        .await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(row.errors, 0);
        assert!(
            row.operations >= 20 && row.operations <= 2 * 55,
            "{}",
            row.operations
        );
        let p50 = row.latency.unwrap().p50;
        assert!((19.0..60.0).contains(&p50), "{p50}");
    }
}
