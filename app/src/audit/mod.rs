//! The audit trail: who did what, as whom, when — append-only and hash-chained.

#[cfg(feature = "ssr")]
pub mod service;
