//! The hub that wakes each member's open presence streams when a session on their
//! behalf starts or ends (Step 12). A wake only says "look again": the streams read
//! the sessions table (`session::presence`), so a lost or duplicated wake never shows
//! anything that is not so. On PostgreSQL, wakes go through `NOTIFY` (every instance
//! listens, this one included), so a member on instance A sees a session started on
//! instance B.

use tokio::sync::broadcast;

use crate::db::Db;

/// The `LISTEN/NOTIFY` channel (PostgreSQL).
pub const CHANNEL: &str = "behalf_presence";

/// The wake hub: a broadcast of member IDs.
pub struct Presence {
    sender: broadcast::Sender<i64>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl Presence {
    /// A receiver of every wake from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.sender.subscribe()
    }

    /// Wakes this instance's streams of `member` (what the `LISTEN` task calls).
    pub fn wake_local(&self, member: i64) {
        // No receiver is no one watching: nothing to do.
        let _ = self.sender.send(member);
    }

    /// Wakes every instance's streams of `member`, after a change committed: on
    /// PostgreSQL by `NOTIFY` (which reaches this instance too), on SQLite directly.
    /// A failure is logged, never the request's: the streams look again on their
    /// keep-alive anyway.
    pub async fn wake(&self, db: &Db, member: i64) {
        match db {
            Db::Postgres(pool) => {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(member.to_string())
                    .execute(pool)
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%error, "could not notify the presence channel");
                    self.wake_local(member);
                }
            }
            Db::Sqlite(_) => self.wake_local(member),
        }
    }
}
