//! `behalf seed`: realistic demo members, the same ones for the same seed, inserted
//! in batches. Every seeded member shares one hash of the given password (hashing
//! each would take hours at argon2id's cost).

use std::fmt;

use app::{
    audit_action::AuditAction,
    audit_writer::record,
    password::{hasher::hash_password_blocking, validate_new_password, Password},
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    config::SeedArgs,
    startup::{command_record, describe, open_database, CliResult},
};

/// Runs `$body` with `$pool` bound to the concrete pool (the seed's bulk statements
/// are its own, not the app's write steps); the body is compiled once per database.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

pub mod demo;
pub mod first_user;
mod indexes;
mod insert;
mod names;
mod population;

pub use insert::insert_members;
use population::EPOCH_2024;
pub use population::{groups_of, member, proxy_grants, SeedMember, GROUPS};

pub struct SeedReport {
    pub requested: u64,
    pub inserted: u64,
    pub seconds: f64,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Seeded {} of {} members in {:.1} s",
            self.inserted, self.requested, self.seconds
        )?;
        if self.inserted < self.requested {
            write!(
                f,
                " ({} already existed: same seed run before?)",
                self.requested - self.inserted
            )?;
        }
        Ok(())
    }
}

pub async fn run(database_url: &str, args: SeedArgs) -> CliResult<SeedReport> {
    let password = Password::new(args.password);
    validate_new_password(&password).map_err(describe)?;
    let db = open_database(database_url).await?;
    let started = std::time::Instant::now();
    let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
    let progress = ProgressBar::new(args.members);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{bar:40}] {pos}/{len} members ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let inserted = insert_members(&db, args.seed, args.members, &hash, |n| progress.inc(n)).await?;
    progress.finish_and_clear();
    app::orders::service::ensure_catalogue(&db, EPOCH_2024).await?;
    // One record for the whole run (a million member records would say less).
    let mut event = command_record(AuditAction::MembersSeeded, "seed");
    if let Some(details) = event.details.as_object_mut() {
        details.insert("requested".into(), args.members.into());
        details.insert("inserted".into(), inserted.into());
        details.insert("seed".into(), args.seed.into());
    }
    record(&db, app::clock::system_now(), event)
        .await
        .map_err(describe)?;
    db.close().await;
    Ok(SeedReport {
        requested: args.members,
        inserted,
        seconds: started.elapsed().as_secs_f64(),
    })
}
