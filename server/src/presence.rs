//! Live presence across instances (PostgreSQL): every instance `LISTEN`s on the
//! presence channel and hands each wake to its own streams (`app::session::presence`).
//! sqlx's listener reconnects by itself; a wake lost meanwhile is made up by the
//! streams' own look every keep-alive.

use std::{sync::Arc, time::Duration};

use app::presence::{Presence, CHANNEL};
use sqlx::{postgres::PgListener, PgPool};

/// Listens for as long as the server runs (until its pool closes).
pub async fn listen(pool: PgPool, presence: Arc<Presence>) {
    loop {
        if pool.is_closed() {
            return;
        }
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "could not listen on the presence channel");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(notification) => {
                                if let Ok(member) = notification.payload().parse::<i64>() {
                                    presence.wake_local(member);
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%error, "the presence listener lost its connection");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not open the presence listener"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
