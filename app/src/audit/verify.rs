//! Verifying the audit chain (`behalf audit verify`).

use crate::{
    audit_writer::{chain_hash, AuditRecord, GENESIS},
    db::Db,
    error::AppError,
    with_db,
};

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record matches; this many were checked.
    Intact { records: i64 },
    /// The first record that does not match, and why.
    Broken { id: i64, problem: String },
}

#[derive(sqlx::FromRow)]
struct StoredRecord {
    #[sqlx(flatten)]
    record: AuditRecord,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// Walks the whole chain in id order, in pages (memory stays flat however long it
/// is), and reports the first record whose content, link or position is wrong.
pub async fn verify(db: &Db) -> Result<Verdict, AppError> {
    const PAGE: i64 = 5_000;
    let mut expected_prev = GENESIS.to_vec();
    let mut expected_id = 1;
    loop {
        let page: Vec<StoredRecord> = with_db!(db, pool => {
            sqlx::query_as(
                "SELECT id, at, actor_id, subject_id, session_id, action, object_type, object_id, details, ip, \
                 user_agent, prev_hash, hash FROM audit_events WHERE id >= $1 ORDER BY id LIMIT $2",
            )
            .bind(expected_id)
            .bind(PAGE)
            .fetch_all(pool)
            .await?
        });
        let done = (page.len() as i64) < PAGE;
        for stored in page {
            let id = stored.record.id;
            if id != expected_id {
                return Ok(Verdict::Broken {
                    id: expected_id,
                    problem: format!("record {expected_id} is missing (the next one is {id})"),
                });
            }
            if stored.prev_hash != expected_prev {
                return Ok(Verdict::Broken {
                    id,
                    problem: "its link to the previous record does not match".into(),
                });
            }
            let hash = chain_hash(&expected_prev, &stored.record);
            if hash != stored.hash {
                return Ok(Verdict::Broken {
                    id,
                    problem: "its content does not match its hash".into(),
                });
            }
            expected_prev = hash;
            expected_id += 1;
        }
        if done {
            break;
        }
    }
    let (last_id, head): (i64, Vec<u8>) = with_db!(db, pool => {
        sqlx::query_as("SELECT last_id, hash FROM audit_head WHERE id = 1").fetch_one(pool).await?
    });
    if last_id != expected_id - 1 || head != expected_prev {
        return Ok(Verdict::Broken {
            id: expected_id,
            problem: format!(
                "the chain ends at record {} but its head says {last_id}",
                expected_id - 1
            ),
        });
    }
    Ok(Verdict::Intact {
        records: expected_id - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64) -> AuditRecord {
        AuditRecord {
            id,
            at: 1_000,
            actor_id: Some(1),
            subject_id: Some(2),
            session_id: None,
            action: "sign_in".into(),
            object_type: Some("session".into()),
            object_id: Some("9".into()),
            details: "{}".into(),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = chain_hash(&GENESIS, &record(1));
        assert_eq!(base.len(), 32);
        assert_eq!(base, chain_hash(&GENESIS, &record(1)), "deterministic");
        assert_ne!(
            base,
            chain_hash(&[1; 32], &record(1)),
            "depends on the previous hash"
        );
        let variants: Vec<fn(&mut AuditRecord)> = vec![
            |r| r.id = 2,
            |r| r.at = 1_001,
            |r| r.actor_id = None,
            |r| r.subject_id = Some(3),
            |r| r.session_id = Some(1),
            |r| r.action = "sign_out".into(),
            |r| r.object_type = None,
            |r| r.object_id = Some("10".into()),
            |r| r.details = "{\"x\":1}".into(),
            |r| r.ip = None,
            |r| r.user_agent = Some("curl".into()),
        ];
        for change in variants {
            let mut changed = record(1);
            change(&mut changed);
            assert_ne!(chain_hash(&GENESIS, &changed), base, "{changed:?}");
        }
    }
}
