//! The commands of the `behalf` binary besides `seed` (see `main.rs`): each opens the
//! database itself and answers the operator with one clear sentence.

pub mod audit;
pub mod members;
pub mod serve;

pub use crate::startup::{command_record, describe, CliResult};
