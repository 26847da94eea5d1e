//! The commands of the `behalf` binary besides `seed` (see `main.rs`): each opens the
//! database itself and answers the operator with one clear sentence.

pub mod audit;
pub mod members;
pub mod serve;

use app::{audit_action::AuditAction, audit_writer::NewEvent, context::RequestContext};

pub use crate::startup::{describe, CliResult};

/// The record of a change made from the command line: no session, no address; the
/// details name the command.
pub fn command_record(action: AuditAction, command: &str) -> NewEvent {
    NewEvent::new(action, &RequestContext::default()).details(serde_json::json!({ "via": command }))
}
