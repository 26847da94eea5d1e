//! What a member is told about their account (Step 12), lower layer: the kinds, and
//! (server only) the one step that writes a notice inside a change's own transaction.
//! A notice that is mailed (SMTP configured) waits in the same row for the mailer,
//! which sends it behind the request and retries with back-off.

use serde::{Deserialize, Serialize};

/// What a notice tells the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum NoticeKind {
    OnBehalfStarted,
    OnBehalfEnded,
    AccessRequested,
    GrantUsed,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 4] = [
        NoticeKind::OnBehalfStarted,
        NoticeKind::OnBehalfEnded,
        NoticeKind::AccessRequested,
        NoticeKind::GrantUsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::OnBehalfStarted => "on_behalf_started",
            NoticeKind::OnBehalfEnded => "on_behalf_ended",
            NoticeKind::AccessRequested => "access_requested",
            NoticeKind::GrantUsed => "grant_used",
        }
    }

    pub fn parse(text: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The words after the actor's name.
    pub fn sentence(self) -> &'static str {
        match self {
            NoticeKind::OnBehalfStarted => "signed in on your behalf",
            NoticeKind::OnBehalfEnded => "left your account",
            NoticeKind::AccessRequested => "asks for access to your account",
            NoticeKind::GrantUsed => "used the access you granted",
        }
    }

    /// Mailed too, when SMTP is configured: someone came in, or asks to. (The end
    /// and the grant's use are in the app; the start's mail says which grant.)
    pub fn mailed(self) -> bool {
        matches!(self, NoticeKind::OnBehalfStarted | NoticeKind::AccessRequested)
    }
}

#[cfg(feature = "ssr")]
pub use self::write::*;

#[cfg(feature = "ssr")]
mod write {
    use super::NoticeKind;
    use crate::{
        clock::Millis,
        db::tx::{with_tx, Tx},
        mode::Mode,
    };

    /// A notice to write.
    #[derive(Clone, Debug)]
    pub struct NewNotice<'a> {
        pub member_id: i64,
        pub kind: NoticeKind,
        pub actor_id: Option<i64>,
        pub reason: &'a str,
        pub mode: Option<Mode>,
        pub session_id: Option<i64>,
        pub request_id: Option<i64>,
    }

    /// Writes `notice` inside `tx` at `at`; `mail` (SMTP is configured) queues its
    /// mail when its kind is mailed.
    pub async fn write_notice<'a>(
        tx: impl Into<Tx<'a>>,
        at: Millis,
        mail: bool,
        notice: NewNotice<'_>,
    ) -> Result<(), sqlx::Error> {
        let mail_status = (mail && notice.kind.mailed()).then_some("pending");
        with_tx!(tx.into(), tx => {
            sqlx::query(
                "INSERT INTO notices (member_id, kind, at, actor_id, reason, mode, session_id, request_id, \
                 mail_status, mail_next_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(notice.member_id)
            .bind(notice.kind.as_str())
            .bind(at)
            .bind(notice.actor_id)
            .bind(notice.reason)
            .bind(notice.mode.map(Mode::as_str))
            .bind(notice.session_id)
            .bind(notice.request_id)
            .bind(mail_status)
            .bind(mail_status.map(|_| at))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// Why a session on behalf ended, in the member's words (the notice's reason).
    pub fn ended_words(end_reason: &str) -> &'static str {
        match end_reason {
            "left" => "they left",
            "ended_by_member" => "you ended it",
            "expired" => "its time was up",
            "signed_out" => "they signed out",
            _ => "it was revoked, or the access that allowed it ended",
        }
    }

    /// The end of session on behalf `session_id` (of `member_id`, by `actor_id`), for
    /// the member: every path that ends one writes this beside its `on_behalf_end`.
    pub async fn write_ended<'a>(
        tx: impl Into<Tx<'a>>,
        at: Millis,
        member_id: i64,
        actor_id: i64,
        session_id: i64,
        why: &str,
    ) -> Result<(), sqlx::Error> {
        let notice = NewNotice {
            member_id,
            kind: NoticeKind::OnBehalfEnded,
            actor_id: Some(actor_id),
            reason: ended_words(why),
            mode: None,
            session_id: Some(session_id),
            request_id: None,
        };
        write_notice(tx, at, false, notice).await
    }
}
