//! Notices by mail (server only), when SMTP is configured (`BEHALF_SMTP_URL`,
//! `BEHALF_MAIL_FROM`). A notice to be mailed waits in its own row (written in the
//! change's transaction); the mailer, a task of its own, claims due ones (a lease, so
//! one instance sends each), sends them through lettre, and records `mail_sent`, or
//! retries with back-off and, after the last try, records `mail_failed`. A failed or
//! slow mail never blocks or undoes what it tells of.

use std::time::Duration;

use lettre::{message::header::ContentType, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, Millis, SECOND},
    context::RequestContext,
    db::{with_db, BeginWrite},
    error::AppError,
    mode::Mode,
    notice::NoticeKind,
    state::{AppState, MailSettings},
};

/// Tries before a mail is given up (`mail_failed`).
pub const MAIL_TRIES: i64 = 6;
/// A claimed mail is someone's for this long (then another instance may try).
const LEASE: Millis = 60 * SECOND;

/// The wait before try `attempt + 1` (after `attempt` failures): 5 s, 10 s, 20 s … 80 s.
pub fn backoff(attempts: i64) -> Millis {
    5 * SECOND * (1_i64 << attempts.clamp(0, 4))
}

/// A notice to mail, with what it needs.
#[derive(sqlx::FromRow, Debug)]
pub struct Due {
    pub id: i64,
    pub member_id: i64,
    pub kind: String,
    pub at: i64,
    pub reason: String,
    pub mode: Option<String>,
    pub mail_attempts: i32,
    pub mail_next_at: i64,
    pub email: String,
    pub member_name: String,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub grant_used: i64,
}

/// A mail's subject and text.
pub fn compose(due: &Due, public_url: Option<&str>) -> (String, String) {
    let kind = NoticeKind::parse(&due.kind).unwrap_or(NoticeKind::OnBehalfStarted);
    let actor = due.actor_name.as_deref().unwrap_or("Someone");
    let role = due.actor_role.as_deref().unwrap_or("staff").replace('_', " ");
    let mode = match due.mode.as_deref().and_then(Mode::parse) {
        Some(Mode::Act) => "act on your behalf (they can make changes)",
        Some(Mode::View) | None => "view only",
    };
    let base = public_url.unwrap_or("").trim_end_matches('/');
    let subject = format!("{actor} {}", kind.sentence());
    let mut text = format!(
        "Hello {},\n\n{actor} ({role}) {} on {}.\nReason: {}\nMode: {mode}\n",
        due.member_name,
        kind.sentence(),
        format_utc(due.at),
        due.reason,
    );
    if due.grant_used > 0 {
        text.push_str("They came in with the access you granted.\n");
    }
    text.push_str(&format!(
        "\nWhat was done on your behalf is in your Access history:\n{base}/account/access-history\n\n\
         To answer requests, grant or revoke access, or be asked first:\n{base}/account/access\n\n\
         While someone is in your account, every page of yours says so,\nwith End it now.\n"
    ));
    (subject, text)
}

/// Sends one mail.
async fn send(mail: &MailSettings, to: &str, subject: String, text: String) -> Result<(), String> {
    let message = Message::builder()
        .from(
            mail.from
                .parse()
                .map_err(|_| "BEHALF_MAIL_FROM is not a mail address".to_string())?,
        )
        .to(to
            .parse()
            .map_err(|_| "the member's email is not a mail address".to_string())?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|error| format!("could not build the mail: {error}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&mail.smtp_url)
        .map_err(|_| "BEHALF_SMTP_URL is not a usable SMTP address".to_string())?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|error| format!("SMTP: {error}"))
}

/// Claims up to 20 due mails (a lease: another instance's claim of the same mail
/// finds its next try moved and takes nothing).
async fn claim(state: &AppState, now: Millis) -> Result<Vec<Due>, AppError> {
    let due: Vec<Due> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT n.id, n.member_id, n.kind, n.at, n.reason, n.mode, n.mail_attempts, n.mail_next_at, \
             m.email, m.display_name AS member_name, n.actor_id, a.display_name AS actor_name, a.role AS actor_role, \
             (SELECT COUNT(*) FROM notices u WHERE u.session_id = n.session_id AND u.kind = 'grant_used') AS grant_used \
             FROM notices n JOIN members m ON m.id = n.member_id LEFT JOIN members a ON a.id = n.actor_id \
             WHERE n.mail_status = 'pending' AND n.mail_next_at <= $1 ORDER BY n.mail_next_at, n.id LIMIT 20",
        )
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    let mut claimed = Vec::with_capacity(due.len());
    for mail in due {
        let taken = with_db!(&state.db, pool => {
            sqlx::query(
                "UPDATE notices SET mail_next_at = $1 WHERE id = $2 AND mail_status = 'pending' AND mail_next_at = $3",
            )
            .bind(now + LEASE)
            .bind(mail.id)
            .bind(mail.mail_next_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if taken == 1 {
            claimed.push(mail);
        }
    }
    Ok(claimed)
}

/// Writes a try's outcome: sent (`mail_sent`), another try later, or given up
/// (`mail_failed`). `error` is never the SMTP address (no secret in a record).
async fn settle(state: &AppState, due: &Due, error: Option<String>) -> Result<(), AppError> {
    let now = state.clock.now();
    let attempts = i64::from(due.mail_attempts) + 1;
    let (status, next, action) = match &error {
        None => ("sent", None, Some(AuditAction::MailSent)),
        Some(_) if attempts >= MAIL_TRIES => ("failed", None, Some(AuditAction::MailFailed)),
        Some(_) => ("pending", Some(now + backoff(attempts)), None),
    };
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE notices SET mail_status = $1, mail_attempts = $2, mail_next_at = $3 WHERE id = $4")
            .bind(status)
            .bind(attempts)
            .bind(next)
            .bind(due.id)
            .execute(&mut *tx)
            .await?;
        if let Some(action) = action {
            let mut event = NewEvent::new(action, &RequestContext::default())
                .subject(due.member_id)
                .object(ObjectKind::Notice, due.id)
                .details(json!({ "kind": due.kind, "attempts": attempts, "error": error }));
            if let Some(actor) = due.actor_id {
                event = event.actor(actor);
            }
            tx.append_audit(now, event).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// One round: claims the due mails and tries each. Returns how many were tried.
pub async fn send_due(state: &AppState) -> Result<usize, AppError> {
    let Some(mail) = state.settings.mail.clone() else {
        return Ok(0);
    };
    let due = claim(state, state.clock.now()).await?;
    for notice in &due {
        let (subject, text) = compose(notice, state.settings.public_url.as_deref());
        let outcome = send(&mail, &notice.email, subject, text).await;
        if let Err(error) = &outcome {
            tracing::warn!(notice = notice.id, %error, "a notice's mail was not sent");
        }
        settle(state, notice, outcome.err()).await?;
    }
    Ok(due.len())
}

/// The mailer: a round every second, for as long as the server runs.
pub async fn run(state: AppState) {
    if state.settings.mail.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(error) = send_due(&state).await {
            tracing::error!(%error, "the mailer could not read or write its notices");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_wait_longer_each_time() {
        assert_eq!(backoff(1), 10 * SECOND);
        assert_eq!(backoff(2), 20 * SECOND);
        assert_eq!(backoff(9), 80 * SECOND);
    }

    #[test]
    fn a_mail_names_who_when_why_and_the_mode_and_links_to_access_history() {
        let due = Due {
            id: 1,
            member_id: 2,
            kind: "on_behalf_started".into(),
            at: 0,
            reason: "ticket 4711".into(),
            mode: Some("act".into()),
            mail_attempts: 0,
            mail_next_at: 0,
            email: "tom@example.com".into(),
            member_name: "Tom Target".into(),
            actor_id: Some(3),
            actor_name: Some("Sid Support".into()),
            actor_role: Some("support".into()),
            grant_used: 1,
        };
        let (subject, text) = compose(&due, Some("https://behalf.example/"));
        assert_eq!(subject, "Sid Support signed in on your behalf");
        assert!(text.contains("Sid Support (support) signed in on your behalf on 1970-01-01 00:00 UTC."));
        assert!(text.contains("Reason: ticket 4711"));
        assert!(text.contains("Mode: act on your behalf"));
        assert!(text.contains("access you granted"));
        assert!(text.contains("https://behalf.example/account/access-history"));
    }
}
