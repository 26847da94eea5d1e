//! The integration tests, one test binary (as zero2prod's `tests/api/`): each module is
//! an area of the product, run against the real application on a random port with its
//! own database (see `common`). One binary links once instead of once per file; run an
//! area with `cargo test -p server --test it <area>::`, e.g. `--test it matrix::`.

// First: its macros (`on_both_databases!`, `with_db!`) are then in scope in every
// module declared after it.
#[macro_use]
mod common;

mod api;
mod api_admin;
mod audit;
mod auth;
mod bench;
mod cli;
mod consent;
mod consent_live;
mod demo;
mod editing;
mod flood;
mod fuzz_parsers;
mod group_commit;
mod hardening;
mod injection;
mod instances;
mod matrix;
mod members;
mod metrics;
mod on_behalf;
mod one_click;
mod orders;
mod oversight;
mod served;
mod view_elevation;
mod view_only;
mod view_trail;
