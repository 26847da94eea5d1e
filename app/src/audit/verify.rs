//! Verifying the audit chain (`behalf audit verify`, `behalf audit anchor`).

use crate::{
    audit_writer::{chain_hash, hex, installed_key, parse_hex32, unkeyed_hash, AuditRecord, GENESIS},
    db::with_db,
    db::Db,
    error::AppError,
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

/// A record's id and hash, written down by the operator somewhere the database's
/// writers cannot reach (`ID:HEX`, as `behalf audit anchor` prints it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub id: i64,
    pub hash: Vec<u8>,
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, hex(&self.hash))
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(text: &str) -> Result<Anchor, String> {
        let bad = || "an anchor is ID:HASH, the record id and its 64-digit hex hash".to_string();
        let (id, digits) = text.trim().split_once(':').ok_or_else(bad)?;
        let id: i64 = id.parse().ok().filter(|id| *id >= 1).ok_or_else(bad)?;
        let hash = parse_hex32(digits).ok_or_else(bad)?.to_vec();
        Ok(Anchor { id, hash })
    }
}

/// The chain's head as an anchor (None while there are no records).
pub async fn head(db: &Db) -> Result<Option<Anchor>, AppError> {
    let (id, hash): (i64, Vec<u8>) = with_db!(db, pool => {
        sqlx::query_as("SELECT last_id, hash FROM audit_head WHERE id = 1").fetch_one(pool).await?
    });
    Ok((id > 0).then_some(Anchor { id, hash }))
}

/// The first record linked with the key (None before any keyed record).
pub async fn keyed_from(db: &Db) -> Result<Option<i64>, AppError> {
    let (keyed_from,): (Option<i64>,) = with_db!(db, pool => {
        sqlx::query_as("SELECT keyed_from FROM audit_head WHERE id = 1").fetch_one(pool).await?
    });
    Ok(keyed_from)
}

/// Walks the whole chain in id order, in pages (memory stays flat however long it
/// is), and reports the first record whose content, link or position is wrong.
pub async fn verify(db: &Db) -> Result<Verdict, AppError> {
    verify_to(db, None).await
}

/// `verify`, and also that the record `anchor` names still has the hash written down:
/// as the chain is keyed, nothing at or before it can have changed unnoticed, even by
/// someone who rewrote every record after it.
pub async fn verify_to(db: &Db, anchor: Option<&Anchor>) -> Result<Verdict, AppError> {
    let key = installed_key()?;
    // Where the keyed chain starts is the key's to say; the database's copy must agree.
    let keyed_from = key.keyed_from;
    let stored = self::keyed_from(db).await?;
    if stored != Some(keyed_from) {
        return Ok(Verdict::Broken {
            id: keyed_from.min(stored.unwrap_or(i64::MAX)),
            problem: format!(
                "the database says the keyed chain starts at record {}, the key says {keyed_from}: \
                 records were passed off as older than the key",
                stored.map_or("(none)".to_string(), |n| n.to_string())
            ),
        });
    }
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
            let hash = if id >= keyed_from {
                chain_hash(key, &expected_prev, &stored.record)
            } else {
                unkeyed_hash(&expected_prev, &stored.record)
            };
            if hash != stored.hash {
                return Ok(Verdict::Broken {
                    id,
                    problem: "its content does not match its hash".into(),
                });
            }
            if let Some(anchor) = anchor.filter(|anchor| anchor.id == id) {
                if anchor.hash != hash {
                    return Ok(Verdict::Broken {
                        id,
                        problem: "its hash is not the anchor's: the chain up to the anchor was rewritten"
                            .into(),
                    });
                }
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
    if let Some(anchor) = anchor.filter(|anchor| anchor.id >= expected_id) {
        return Ok(Verdict::Broken {
            id: anchor.id,
            problem: format!(
                "the anchor names record {} but the chain ends at record {}",
                anchor.id,
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
    use crate::audit_writer::AuditKey;

    #[test]
    fn an_anchor_reads_back_as_printed() {
        let anchor = Anchor {
            id: 42,
            hash: (0..32).collect(),
        };
        let text = anchor.to_string();
        assert!(text.starts_with("42:000102"), "{text}");
        assert_eq!(text.parse::<Anchor>().unwrap(), anchor);
        for bad in [
            "",
            "42",
            "x:00",
            "0:00",
            &format!("42:{}", "g".repeat(64)),
            &format!("-1:{}", "0".repeat(64)),
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_key_reads_back_from_its_file() {
        let key = AuditKey::generate().keyed_from(7);
        assert_eq!(AuditKey::from_key_file(&key.to_key_file()), Some(key.clone()));
        assert_eq!(AuditKey::from_hex(&key.to_hex()).unwrap().to_hex(), key.to_hex());
        assert_eq!(AuditKey::from_key_file(&key.to_hex()).unwrap().keyed_from, 1);
        assert!(AuditKey::from_hex("abc").is_none());
        assert!(AuditKey::from_hex(&"z".repeat(64)).is_none());
        assert!(AuditKey::from_hex(&format!("+f{}", "0".repeat(62))).is_none());
        assert!(AuditKey::from_key_file(&format!("{}\nkeyed-from x", key.to_hex())).is_none());
        assert!(
            !format!("{key:?}").contains(&key.to_hex()[..8]),
            "the key is never printed"
        );
        // 64 hex digits configured are the key itself; other text is a passphrase.
        assert_eq!(AuditKey::from_secret(&key.to_hex()).to_hex(), key.to_hex());
        assert_ne!(AuditKey::from_secret(&"p".repeat(40)).to_hex(), "p".repeat(40));
        assert_ne!(key.check_value(), AuditKey::generate().check_value());
    }

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
    fn the_hash_covers_every_field_the_previous_hash_and_the_key() {
        let key = AuditKey::from_bytes([7; 32]);
        let chain_hash = |prev: &[u8], record: &AuditRecord| super::chain_hash(&key, prev, record);
        let base = chain_hash(&GENESIS, &record(1));
        assert_eq!(base.len(), 32);
        assert_eq!(base, chain_hash(&GENESIS, &record(1)), "deterministic");
        assert_ne!(
            base,
            chain_hash(&[1; 32], &record(1)),
            "depends on the previous hash"
        );
        assert_ne!(
            base,
            super::chain_hash(&AuditKey::from_bytes([8; 32]), &GENESIS, &record(1)),
            "depends on the key"
        );
        assert_ne!(
            base,
            unkeyed_hash(&GENESIS, &record(1)),
            "is not the plain SHA-256"
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
