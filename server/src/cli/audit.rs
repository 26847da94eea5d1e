//! `behalf audit verify [--anchor ID:HASH]` and `behalf audit anchor`.

use app::{
    audit::verify::{head, verify_to, Anchor, Verdict},
    audit_writer::installed_key,
};

use crate::{
    cli::{describe, CliResult},
    startup::open_database,
};

/// `behalf audit verify [--anchor ID:HASH]`: Ok(message) when the chain is intact
/// (and holds the anchor), Err(message) otherwise.
pub async fn audit_verify_command(
    database_url: &str,
    anchor: Option<Anchor>,
) -> CliResult<Result<String, String>> {
    let db = open_database(database_url).await?;
    let started = std::time::Instant::now();
    let verdict = verify_to(&db, anchor.as_ref()).await.map_err(describe)?;
    db.close().await;
    // An intact chain starts being keyed where the key says (verify_to checked that the
    // database agrees).
    let keyed = installed_key().map_err(describe)?.keyed_from;
    let took = started.elapsed().as_secs_f64();
    Ok(match verdict {
        Verdict::Intact { records } => {
            let mut message = format!("ok: {records} audit records verified in {took:.2} s");
            if keyed > 1 {
                message.push_str(&format!(
                    " (records before {keyed} predate the keyed chain and are linked by plain SHA-256)"
                ));
            }
            if let Some(anchor) = anchor {
                message.push_str(&format!("; record {} matches the anchor", anchor.id));
            }
            Ok(message)
        }
        Verdict::Broken { id, problem } => Err(format!("audit chain broken at record {id}: {problem}")),
    })
}

/// `behalf audit anchor`: verifies the chain, then prints its head as `ID:HASH` for
/// the operator to keep somewhere the database's writers cannot reach.
pub async fn audit_anchor_command(database_url: &str) -> CliResult<Result<String, String>> {
    let db = open_database(database_url).await?;
    let verdict = verify_to(&db, None).await.map_err(describe)?;
    let anchor = head(&db).await.map_err(describe)?;
    db.close().await;
    Ok(match (verdict, anchor) {
        (Verdict::Broken { id, problem }, _) => Err(format!(
            "audit chain broken at record {id}: {problem} (no anchor is printed for a broken chain)"
        )),
        (Verdict::Intact { .. }, None) => {
            Err("the audit trail is empty: there is nothing to anchor yet".into())
        }
        (Verdict::Intact { .. }, Some(anchor)) => Ok(anchor.to_string()),
    })
}
