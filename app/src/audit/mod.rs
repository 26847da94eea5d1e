//! The audit trail: who did what, as whom, when — append-only and hash-chained —
//! and its viewer for editors and super users.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::{
    audit_action::AuditAction,
    error::AppError,
    urls::{encode_query_value, given, optional_id},
};

#[cfg(feature = "ssr")]
pub mod export;
#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;
#[cfg(feature = "ssr")]
pub mod verify;

/// Records on one page of the viewer.
pub const PAGE_SIZE: i64 = 50;

/// The viewer's filters, validated. Dates are whole UTC days (`YYYY-MM-DD`), both ends
/// included.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<i64>,
    pub subject: Option<i64>,
    pub action: Option<AuditAction>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The session on behalf the records were made in.
    pub session: Option<i64>,
}

/// The viewer's filters as they came in a URL or a form (each may be missing or empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterParams {
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub session: Option<String>,
}

impl AuditFilter {
    /// Checks the raw parameters: IDs are positive whole numbers, the action one of
    /// `AuditAction::ALL`, dates `YYYY-MM-DD`.
    pub fn parse(params: &FilterParams) -> Result<AuditFilter, AppError> {
        let id =
            |field: &str, value: &Option<String>| optional_id(field, value, "Enter an ID (a whole number).");
        let date = |field: &str, value: &Option<String>| -> Result<Option<String>, AppError> {
            match given(value).as_deref() {
                None => Ok(None),
                Some(text) if is_date(text) => Ok(Some(text.to_string())),
                Some(_) => Err(AppError::validation(field, "Enter a date as YYYY-MM-DD.")),
            }
        };
        let action = match given(&params.action).as_deref() {
            None => None,
            Some(text) => Some(AuditAction::parse(text).ok_or_else(|| {
                AppError::validation("action", "Choose an action from the list, like on_behalf_start.")
            })?),
        };
        let filter = AuditFilter {
            actor: id("actor", &params.actor)?,
            subject: id("subject", &params.subject)?,
            action,
            from: date("from", &params.from)?,
            to: date("to", &params.to)?,
            session: id("session", &params.session)?,
        };
        if let (Some(from), Some(to)) = (&filter.from, &filter.to) {
            if from > to {
                return Err(AppError::validation(
                    "to",
                    "The end date is before the start date.",
                ));
            }
        }
        Ok(filter)
    }

    /// The filters as a query string (without the leading `?`), empty ones left out.
    pub fn query_string(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                parts.push(format!("{key}={}", encode_query_value(&value)));
            }
        };
        push("actor", self.actor.map(|v| v.to_string()));
        push("subject", self.subject.map(|v| v.to_string()));
        push("action", self.action.map(|action| action.as_str().to_string()));
        push("from", self.from.clone());
        push("to", self.to.clone());
        push("session", self.session.map(|v| v.to_string()));
        parts.join("&")
    }
}

/// `YYYY-MM-DD` with a plausible month and day (the server checks the calendar).
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
        && (1..=12).contains(&text[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&text[8..10].parse::<u32>().unwrap_or(0))
}

/// One record as the viewer shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: Option<(i64, String)>,
    pub subject: Option<(i64, String)>,
    pub session_id: Option<i64>,
    pub action: String,
    pub object: Option<String>,
    pub details: String,
    pub ip: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub records: Vec<AuditRow>,
    /// The cursor for the next (older) page, if there is one.
    pub older: Option<i64>,
}

/// A session on behalf from start to end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub session_id: i64,
    pub actor: (i64, String),
    pub member: (i64, String),
    pub reason: String,
    pub started: String,
    pub ended: Option<String>,
    pub end_reason: Option<String>,
    /// Every record of the session, oldest first.
    pub records: Vec<AuditRow>,
}

/// A page of the audit trail, newest first. Editors and super users only.
#[server(prefix = "/api", endpoint = "audit/list", input = PostUrl)]
pub async fn list_audit(
    actor: Option<String>,
    subject: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    session: Option<String>,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let params = FilterParams {
        actor,
        subject,
        action,
        from,
        to,
        session,
    };
    service::page(&state, &request, &params, before).await
}

/// A session on behalf's timeline. Editors and super users only.
#[server(prefix = "/api", endpoint = "audit/session", input = PostUrl)]
pub async fn session_timeline(id: i64) -> Result<Timeline, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::timeline(&state, &request, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_and_written_back() {
        let params = |raw: [Option<&str>; 6]| {
            let own = |i: usize| raw[i].map(str::to_string);
            FilterParams {
                actor: own(0),
                subject: own(1),
                action: own(2),
                from: own(3),
                to: own(4),
                session: own(5),
            }
        };
        let filter = AuditFilter::parse(&params([
            Some("4"),
            None,
            Some("on_behalf_start"),
            Some("2026-01-01"),
            Some("2026-12-31"),
            Some(""),
        ]))
        .unwrap();
        assert_eq!(filter.actor, Some(4));
        assert_eq!(
            filter.query_string(),
            "actor=4&action=on_behalf_start&from=2026-01-01&to=2026-12-31"
        );
        for (field, raw) in [
            ("actor", [Some("x"), None, None, None, None, None]),
            ("subject", [None, Some("-3"), None, None, None, None]),
            ("action", [None, None, Some("drop table"), None, None, None]),
            ("from", [None, None, None, Some("2026-13-01"), None, None]),
            (
                "to",
                [None, None, None, Some("2026-02-01"), Some("2026-01-01"), None],
            ),
            ("session", [None, None, None, None, None, Some("1.5")]),
        ] {
            let error = AuditFilter::parse(&params(raw)).unwrap_err();
            assert_eq!(error.field(), Some(field), "{raw:?}");
        }
    }

    #[test]
    fn every_action_that_can_be_written_can_be_filtered_and_no_other() {
        let filter = |action: &str| {
            AuditFilter::parse(&FilterParams {
                action: Some(action.to_string()),
                ..FilterParams::default()
            })
        };
        // Writers take an `AuditAction`, so what they write is one of `ALL`; the
        // viewer's list and the filter accept exactly those names.
        for &action in AuditAction::ALL {
            let parsed = filter(action.as_str()).unwrap();
            assert_eq!(parsed.action, Some(action));
            assert_eq!(parsed.query_string(), format!("action={action}"));
        }
        for name in [
            "session_ended",
            "one_click_used",
            "password_changed",
            "members_seeded",
        ] {
            assert!(filter(name).is_ok(), "{name}");
        }
        for unknown in ["no_such_action", "sign_in_", "SIGN_IN", "sign in"] {
            assert_eq!(filter(unknown).unwrap_err().field(), Some("action"), "{unknown}");
        }
    }
}
