//! The event about to be recorded, as the services build it.

use crate::{
    audit_action::{AuditAction, ObjectKind},
    context::{CurrentSession, RequestContext},
};

/// An event about to be recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub action: AuditAction,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub session_id: Option<i64>,
    pub object_type: Option<ObjectKind>,
    pub object_id: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session on behalf this change was made in, which must still be live.
    pub requires_live: Option<i64>,
}

/// A user agent as kept in the database and the audit trail: at most 512 characters.
pub fn clip_user_agent(user_agent: &str) -> String {
    user_agent.chars().take(512).collect()
}

impl NewEvent {
    /// An event with the client's address and user agent from `request`.
    pub fn new(action: AuditAction, request: &RequestContext) -> Self {
        NewEvent {
            action,
            actor_id: None,
            subject_id: None,
            session_id: None,
            object_type: None,
            object_id: None,
            details: serde_json::Value::Object(Default::default()),
            ip: request.ip.clone(),
            user_agent: request.user_agent.as_deref().map(clip_user_agent),
            requires_live: None,
        }
    }

    pub fn actor(mut self, id: i64) -> Self {
        self.actor_id = Some(id);
        self
    }

    /// Recorded as done by the real person behind `session`: the actor while on
    /// behalf (with the session on behalf named), else the member.
    ///
    /// While on behalf, the change is also tied to that session staying live: the
    /// append fails with `OnBehalfEnded` (and the whole change rolls back) if the
    /// session on behalf has ended since the request began.
    pub fn by(mut self, session: &CurrentSession) -> Self {
        self.actor_id = Some(session.actor().id);
        self.session_id = session.on_behalf_id();
        self.requires_live = session.on_behalf_id();
        self
    }

    /// Done within this session on behalf.
    pub fn on_behalf(mut self, session_id: i64) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub fn subject(mut self, id: i64) -> Self {
        self.subject_id = Some(id);
        self
    }

    pub fn object(mut self, kind: ObjectKind, id: impl ToString) -> Self {
        self.object_type = Some(kind);
        self.object_id = Some(id.to_string());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}
