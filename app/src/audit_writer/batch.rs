//! One batch of a group commit (PostgreSQL): the jobs run one after another in one
//! transaction, each inside a savepoint; their records are appended together at the
//! end, under one hold of the chain's head, and the whole batch commits once.

use std::{
    future::Future,
    ops::{Deref, DerefMut},
    pin::Pin,
};

use sqlx::{Executor, PgConnection, PgPool, Postgres, Transaction};

use super::{
    chain::{chain_hash, AuditRecord, AuditTx},
    event::NewEvent,
    key::installed_key,
};
use crate::{clock::Millis, error::AppError};

/// A boxed future that may borrow for `'a` (a batch job's work).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The id `append_audit` answers inside a batch: the record's own is only given when
/// the batch appends it, after every job ran (nothing placed in a batch needs it).
pub const DEFERRED_ID: i64 = 0;

/// A job after the first of its batch waits at most this long for a row lock; past
/// it, it is rolled back to its savepoint and run again alone (see `run_batch`).
const LOCK_WAIT_IN_BATCH: &str = "SET LOCAL lock_timeout = '50ms'";

/// The transaction of a batch, as one job sees it: a PostgreSQL connection (deref)
/// inside an open transaction, and an `AuditTx` whose `append_audit` checks what it
/// must now (the session on behalf still live, its row held) and queues the record,
/// which the batch appends after every job ran.
pub struct BatchTx {
    tx: Transaction<'static, Postgres>,
    /// The running job's records, in order.
    queued: Vec<(Millis, NewEvent)>,
}

impl Deref for BatchTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for BatchTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl AuditTx for BatchTx {
    /// Checks, as a transaction's `append_audit` does on PostgreSQL, that the session
    /// on behalf is still live, holding its row (`FOR SHARE`) until the batch commits,
    /// so the session row is still taken before the head; then queues the record.
    /// Returns `DEFERRED_ID`.
    async fn append_audit(&mut self, at: Millis, event: NewEvent) -> Result<i64, AppError> {
        if let Some(session) = event.requires_live {
            let ended: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT ended_at FROM sessions WHERE id = $1 FOR SHARE")
                    .bind(session)
                    .fetch_optional(&mut *self.tx)
                    .await?;
            if !matches!(ended, Some((None,))) {
                return Err(AppError::OnBehalfEnded);
            }
        }
        installed_key()?;
        self.queued.push((at, event));
        Ok(DEFERRED_ID)
    }
}

/// One change's work in a batch, its value kept until the batch's outcome is known.
pub(super) trait Job: Send {
    /// Runs the work inside `tx` (in its savepoint), keeping its value.
    fn run<'c>(&'c mut self, tx: &'c mut BatchTx) -> BoxFuture<'c, Result<(), AppError>>;
    /// Answers the caller: the kept value when `outcome` is Ok (the batch committed),
    /// else the error. A caller that has gone (a cancelled request) is not waited for.
    fn finish(self: Box<Self>, outcome: Result<(), AppError>);
}

/// A job that ran, with the records it queued.
type Ran = (Box<dyn Job>, Vec<(Millis, NewEvent)>);

/// Runs `jobs` as one batch in one transaction on `pool` and answers every job it
/// settles. A job after the first that failed with `Internal` (a row lock not free
/// within `LOCK_WAIT_IN_BATCH`, say) is not answered but returned, to be run again in
/// a batch of its own: only the first job of a batch may wait for a row lock, as a
/// transaction of its own would, so that a batch holding earlier jobs' row locks
/// never waits for a transaction that waits for one of them (no new deadlock).
pub(super) async fn run_batch(pool: &PgPool, jobs: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
    let mut tx = match pool.begin().await {
        Ok(tx) => BatchTx {
            tx,
            queued: Vec::new(),
        },
        Err(error) => {
            let error = AppError::from(error);
            jobs.into_iter().for_each(|job| job.finish(Err(error.clone())));
            return Vec::new();
        }
    };
    let mut ran = Vec::with_capacity(jobs.len());
    let mut retry = Vec::new();
    let mut pending = jobs.into_iter();
    if let Err(error) = run_jobs(&mut tx, &mut pending, &mut ran, &mut retry).await {
        // The transaction is broken: nothing of this batch is written.
        let error = AppError::from(error);
        let unanswered = ran.into_iter().map(|(job, _)| job).chain(pending);
        unanswered.for_each(|job| job.finish(Err(error.clone())));
        return retry;
    }
    let events = ran.iter_mut().flat_map(|(_, queued)| queued.drain(..)).collect();
    let outcome = append_and_commit(tx, events).await;
    // Logged once (where the database error became `Internal`), answered to each.
    ran.into_iter().for_each(|(job, _)| job.finish(outcome.clone()));
    retry
}

/// Appends the batch's records and commits: the one COMMIT (and WAL flush) of all.
async fn append_and_commit(mut tx: BatchTx, events: Vec<(Millis, NewEvent)>) -> Result<(), AppError> {
    append_all(&mut tx, events).await?;
    tx.tx.commit().await?;
    Ok(())
}

/// Runs each job of `pending` in a savepoint of `tx`: released when the job succeeds
/// (the job and its queued records go to `ran`), rolled back when it fails (the job is
/// answered with its own error, or put in `retry`). An error here is the
/// transaction's own (a savepoint statement failed): the batch cannot go on.
///
/// The statements between two jobs (the end of one savepoint, the lock wait's limit,
/// the next savepoint) go in one round trip; a `SET LOCAL` is only ever sent outside
/// a job's savepoint, so that no rollback undoes it.
async fn run_jobs(
    tx: &mut BatchTx,
    pending: &mut std::vec::IntoIter<Box<dyn Job>>,
    ran: &mut Vec<Ran>,
    retry: &mut Vec<Box<dyn Job>>,
) -> Result<(), sqlx::Error> {
    let mut between: Vec<&str> = Vec::new();
    let mut first = true;
    let mut limited = false;
    while let Some(mut job) = pending.next() {
        between.push("SAVEPOINT job");
        tx.tx.execute(between.join("; ").as_str()).await?;
        between.clear();
        match job.run(tx).await {
            Ok(()) => {
                between.push("RELEASE SAVEPOINT job");
                ran.push((job, std::mem::take(&mut tx.queued)));
            }
            Err(error) => {
                // Nothing of it can commit: rolled back before anything else runs.
                between.extend(["ROLLBACK TO SAVEPOINT job", "RELEASE SAVEPOINT job"]);
                tx.queued.clear();
                if !first && error == AppError::Internal {
                    retry.push(job);
                } else {
                    job.finish(Err(error));
                }
            }
        }
        first = false;
        if !limited && pending.len() > 0 {
            limited = true;
            between.push(LOCK_WAIT_IN_BATCH);
        }
    }
    if limited {
        // The head is waited for as any appender waits for it.
        between.push("SET LOCAL lock_timeout TO DEFAULT");
    }
    if !between.is_empty() {
        tx.tx.execute(between.join("; ").as_str()).await?;
    }
    Ok(())
}

/// Appends `events` in order under one hold of the chain's head (`FOR UPDATE`, taken
/// after every job's session rows, as every writer takes it): ids and hashes as
/// `AuditTx::append_audit` gives them, one insert, one update of the head.
async fn append_all(tx: &mut BatchTx, events: Vec<(Millis, NewEvent)>) -> Result<(), AppError> {
    if events.is_empty() {
        return Ok(());
    }
    let key = installed_key()?;
    let (last_id, mut prev): (i64, Vec<u8>) =
        sqlx::query_as("SELECT last_id, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx.tx)
            .await?;
    let mut columns = Columns::default();
    let mut actions = Vec::with_capacity(events.len());
    for (id, (at, event)) in (last_id + 1..).zip(events) {
        actions.push(event.action);
        let record = AuditRecord::of(id, at, event);
        let hash = chain_hash(key, &prev, &record);
        columns.push(record, std::mem::replace(&mut prev, hash.clone()), hash);
    }
    let last = columns.id.last().copied().unwrap_or(last_id);
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor_id, subject_id, session_id, action, object_type, \
         object_id, details, ip, user_agent, prev_hash, hash) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], \
         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::BYTEA[], $13::BYTEA[])",
    )
    .bind(&columns.id)
    .bind(&columns.at)
    .bind(&columns.actor_id)
    .bind(&columns.subject_id)
    .bind(&columns.session_id)
    .bind(&columns.action)
    .bind(&columns.object_type)
    .bind(&columns.object_id)
    .bind(&columns.details)
    .bind(&columns.ip)
    .bind(&columns.user_agent)
    .bind(&columns.prev_hash)
    .bind(&columns.hash)
    .execute(&mut *tx.tx)
    .await?;
    sqlx::query("UPDATE audit_head SET last_id = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(&prev)
        .execute(&mut *tx.tx)
        .await?;
    // Counted once appended, before the transaction commits (as `append_audit` counts).
    for action in actions {
        metrics::counter!("behalf_audit_records_total", "action" => action.as_str()).increment(1);
    }
    Ok(())
}

/// The batch's records, column by column (one array parameter each).
#[derive(Default)]
struct Columns {
    id: Vec<i64>,
    at: Vec<i64>,
    actor_id: Vec<Option<i64>>,
    subject_id: Vec<Option<i64>>,
    session_id: Vec<Option<i64>>,
    action: Vec<String>,
    object_type: Vec<Option<String>>,
    object_id: Vec<Option<String>>,
    details: Vec<String>,
    ip: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, record: AuditRecord, prev_hash: Vec<u8>, hash: Vec<u8>) {
        self.id.push(record.id);
        self.at.push(record.at);
        self.actor_id.push(record.actor_id);
        self.subject_id.push(record.subject_id);
        self.session_id.push(record.session_id);
        self.action.push(record.action);
        self.object_type.push(record.object_type);
        self.object_id.push(record.object_id);
        self.details.push(record.details);
        self.ip.push(record.ip);
        self.user_agent.push(record.user_agent);
        self.prev_hash.push(prev_hash);
        self.hash.push(hash);
    }
}
