//! A write transaction on either database, borrowed: what the shared write steps
//! (opening a session, ending a member's sessions, revoking their links, group
//! membership, search terms) take, so that any area's transaction can run them and a
//! `use` line shows who depends on whom.
//!
//! A caller inside `with_db!` holds a concrete `Transaction` of one backend; it
//! passes `&mut tx`, which becomes a `Tx`. The step's body is compiled once per
//! backend by `with_tx!` (a match, no boxing, no dynamic dispatch).

use sqlx::{Postgres, Sqlite, Transaction};

/// A borrowed write transaction of either backend.
pub enum Tx<'a> {
    Sqlite(&'a mut Transaction<'static, Sqlite>),
    Postgres(&'a mut Transaction<'static, Postgres>),
}

impl<'a> From<&'a mut Transaction<'static, Sqlite>> for Tx<'a> {
    fn from(tx: &'a mut Transaction<'static, Sqlite>) -> Self {
        Tx::Sqlite(tx)
    }
}

impl<'a> From<&'a mut Transaction<'static, Postgres>> for Tx<'a> {
    fn from(tx: &'a mut Transaction<'static, Postgres>) -> Self {
        Tx::Postgres(tx)
    }
}

/// Runs `$body` with `$t` bound to the concrete transaction (`&mut Transaction<…>`);
/// the body is compiled once per database.
macro_rules! with_tx {
    ($tx:expr, $t:ident => $body:expr) => {
        match $tx {
            $crate::db::tx::Tx::Sqlite($t) => $body,
            $crate::db::tx::Tx::Postgres($t) => $body,
        }
    };
}
pub(crate) use with_tx;

/// A step that takes a `Tx` may hand it on to another (a reborrow).
impl<'a, 'b> From<&'a mut Tx<'b>> for Tx<'a> {
    fn from(tx: &'a mut Tx<'b>) -> Self {
        match tx {
            Tx::Sqlite(tx) => Tx::Sqlite(tx),
            Tx::Postgres(tx) => Tx::Postgres(tx),
        }
    }
}
