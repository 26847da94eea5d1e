//! The members' shared write steps, run inside the caller's transaction: the search
//! terms of a member, and a member's place in a group (the member editor's and the
//! group pages').

use crate::{
    clock::Millis,
    db::tx::{with_tx, Tx},
    members::directory::search_terms,
};

/// Rewrites member `id`'s search terms inside `tx` from the member's row as it now is
/// (none for a deleted member). Call it after any change of name, email, role or
/// last sign-in: the terms carry copies of those sort keys.
pub async fn write_terms<'a>(tx: impl Into<Tx<'a>>, id: i64) -> Result<(), sqlx::Error> {
    with_tx!(tx.into(), tx => {
        sqlx::query("DELETE FROM member_terms WHERE member_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name_key, email_key, role_rank, sign_in_key FROM members \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((name_key, email_key, role_rank, sign_in_key)) = row {
            for term in search_terms(&name_key, &email_key) {
                sqlx::query(
                    "INSERT INTO member_terms (member_id, term, name_key, email_key, role_rank, sign_in_key) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(term)
                .bind(&name_key)
                .bind(&email_key)
                .bind(role_rank)
                .bind(sign_in_key)
                .execute(&mut **tx)
                .await?;
            }
        }
    });
    Ok(())
}

/// Puts member `member` in group `group` (or takes them out, `add` false), keeping
/// the group's member count, inside `tx`.
pub async fn set_group_membership<'a>(
    tx: impl Into<Tx<'a>>,
    group: i64,
    member: i64,
    now: Millis,
    add: bool,
) -> Result<(), sqlx::Error> {
    with_tx!(tx.into(), tx => {
        if add {
            sqlx::query("INSERT INTO group_members (group_id, member_id, added_at) VALUES ($1, $2, $3)")
                .bind(group)
                .bind(member)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
                .bind(group)
                .bind(member)
                .execute(&mut **tx)
                .await?;
        }
        let change = if add { 1_i64 } else { -1_i64 };
        sqlx::query("UPDATE groups SET member_count = member_count + $2, updated_at = $3 WHERE id = $1")
            .bind(group)
            .bind(change)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    });
    Ok(())
}
