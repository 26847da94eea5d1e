//! Group commit (PostgreSQL): concurrent changes share one hold of the chain's head
//! and one COMMIT.
//!
//! Every change appends to the one chain, so on PostgreSQL each holds the head's row
//! lock from its append through its COMMIT, WAL flush included: one flush per change,
//! one change at a time. Through `GroupCommit::run`, a change instead hands its
//! database work to the process's batcher, which runs the jobs waiting together in
//! one transaction (each in a savepoint, so a failing job fails alone), appends their
//! records at the end under one hold of the head, and commits once. See `batch`.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, OnceLock,
};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::batch::{run_batch, BatchTx, BoxFuture, Job};
use crate::{db::Db, error::AppError};

/// The most jobs in one batch. Each job is a subtransaction (its savepoint) holding an
/// XID: PostgreSQL caches 64 per transaction, past which every snapshot taken while
/// the batch runs slows down.
const MAX_BATCH: usize = 64;
/// Batches in flight at once: while one holds the head and commits, the next runs its
/// jobs (on another connection), so the head's hold is the appends and the COMMIT.
const IN_FLIGHT: usize = 2;
/// Jobs that may wait for the batcher before `run` waits to hand one over.
const QUEUE: usize = 1024;

/// A change's database work inside a batch, returning its value. It may run twice
/// (again alone, when it failed with `Internal` behind another job), so it does
/// database work only, through the `BatchTx` it is given.
pub type BatchWork<T> = Box<dyn for<'c> Fn(&'c mut BatchTx) -> BoxFuture<'c, Result<T, AppError>> + Send>;

/// The process's batcher for one PostgreSQL pool (none for SQLite, whose single
/// writer is not held through a network round trip). Its task starts with the first
/// job, on the runtime that runs it.
pub struct GroupCommit {
    pool: Option<PgPool>,
    jobs: OnceLock<mpsc::Sender<Box<dyn Job>>>,
    /// Whether the loss of the task has been logged.
    lost: AtomicBool,
}

impl GroupCommit {
    /// The batcher of `db`: on for PostgreSQL, off for SQLite.
    pub fn new(db: &Db) -> GroupCommit {
        GroupCommit {
            pool: match db {
                Db::Postgres(pool) => Some(pool.clone()),
                Db::Sqlite(_) => None,
            },
            jobs: OnceLock::new(),
            lost: AtomicBool::new(false),
        }
    }

    /// Whether changes go through batches (PostgreSQL).
    pub fn is_on(&self) -> bool {
        self.pool.is_some()
    }

    /// Runs `work` in the next batch and returns its value once the batch has
    /// committed (so once it is durable), or its own error (its writes and records
    /// discarded, the rest of the batch unaffected), or `Internal` when the batch
    /// could not commit. The job belongs to the batcher once handed over: a caller
    /// that stops waiting (a cancelled request) does not cancel it. Should the batcher
    /// be gone, the job runs here, alone in its own transaction (today's direct path).
    pub async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut BatchTx) -> BoxFuture<'c, Result<T, AppError>> + Send + 'static,
    {
        let Some(pool) = &self.pool else {
            tracing::error!("a group commit was asked of a database without one");
            return Err(AppError::Internal);
        };
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Typed {
            work: Box::new(work),
            value: None,
            reply,
        });
        let jobs = self.jobs.get_or_init(|| start(pool.clone()));
        if let Err(mpsc::error::SendError(job)) = jobs.send(job).await {
            if !self.lost.swap(true, Ordering::Relaxed) {
                tracing::error!("the group commit task has stopped: changes now commit one by one");
            }
            for job in run_batch(pool, vec![job]).await {
                job.finish(Err(AppError::Internal));
            }
        }
        answer.await.unwrap_or_else(|_| {
            tracing::error!("a group commit batch ended without answering (it panicked)");
            Err(AppError::Internal)
        })
    }
}

/// Starts the batcher's task on the current runtime; the sender it listens to.
fn start(pool: PgPool) -> mpsc::Sender<Box<dyn Job>> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(batcher(pool, receiver));
    sender
}

/// The batcher: waits for a job, then takes every job already waiting (up to
/// `MAX_BATCH`) into one batch, each batch in a task of its own (at most `IN_FLIGHT`
/// at once; a batch that panics loses only its own jobs). Jobs a batch returns are
/// run again, each alone, by that batch's task. Ends when every sender is gone.
async fn batcher(pool: PgPool, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = receiver.recv().await {
        // Waiting for a slot lets the next batch grow meanwhile.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            for job in run_batch(&pool, batch).await {
                for job in run_batch(&pool, vec![job]).await {
                    job.finish(Err(AppError::Internal));
                }
            }
            drop(slot);
        });
    }
}

/// A job with its typed work and reply.
struct Typed<T> {
    work: BatchWork<T>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, AppError>>,
}

impl<T: Send + 'static> Job for Typed<T> {
    fn run<'c>(&'c mut self, tx: &'c mut BatchTx) -> BoxFuture<'c, Result<(), AppError>> {
        Box::pin(async move {
            self.value = Some((self.work)(tx).await?);
            Ok(())
        })
    }

    fn finish(self: Box<Self>, outcome: Result<(), AppError>) {
        let Typed { value, reply, .. } = *self;
        let answer = outcome.and_then(|()| value.ok_or(AppError::Internal));
        // The caller may have gone (its request cancelled): the change stands all the same.
        let _ = reply.send(answer);
    }
}
