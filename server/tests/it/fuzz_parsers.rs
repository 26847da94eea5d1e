//! Fuzzing, as property tests: every parser of untrusted input (the one-click path,
//! the bearer header, the cookie header, the members list's and the audit filters'
//! query parameters) takes any input without panicking, and what it accepts keeps its
//! promises. `make test` runs 256 cases each; a longer run:
//! `PROPTEST_CASES=200000 cargo test -p server --test it --release fuzz_parsers::`.

use app::{
    audit::{AuditFilter, FilterParams},
    members::{ListParams, ListQuery},
    one_click::service::parse_address,
    session::{session_from_headers, SessionCookie},
};
use axum::http::{header, HeaderMap, HeaderValue};
use proptest::prelude::*;
use server::session::bearer_token;

/// Text a client may send: ASCII noise with the characters parsers split on, and
/// some of anything else.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        "[0-9a-zA-Z_=;,%/ -]{0,60}",
        any::<String>().prop_map(|s| s.chars().take(80).collect()),
    ]
}

fn optional() -> impl Strategy<Value = Option<String>> {
    prop::option::of(noise())
}

proptest! {
    #[test]
    fn the_one_click_path_parser_takes_anything(member in noise(), token in noise()) {
        if let Some((id, kept)) = parse_address(&member, &token) {
            prop_assert!(id > 0);
            prop_assert_eq!(member.parse::<i64>().ok(), Some(id));
            prop_assert_eq!(kept, token.clone());
            prop_assert!(app::session::token::is_well_formed(&token));
        }
    }

    #[test]
    // (An ID of up to 18 digits: longer ones are refused before any parsing.)
    fn a_well_formed_one_click_path_is_accepted(id in 1i64..=999_999_999_999_999_999, token in "[A-Za-z0-9_-]{43}") {
        prop_assert_eq!(parse_address(&id.to_string(), &token), Some((id, token.clone())));
    }

    #[test]
    fn the_bearer_header_parser_takes_anything(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            headers.insert(header::AUTHORIZATION, value);
        }
        if let Some(token) = bearer_token(&headers) {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(text.to_ascii_lowercase().starts_with("bearer "));
            prop_assert_eq!(token.trim(), token.as_str());
        }
    }

    #[test]
    fn the_cookie_header_parser_takes_anything(values in prop::collection::vec(noise(), 0..4), https in any::<bool>()) {
        let mut headers = HeaderMap::new();
        for value in &values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(header::COOKIE, value);
            }
        }
        let _ = session_from_headers(&headers, https);
    }

    #[test]
    fn the_session_cookie_is_found_once_among_others(
        before in "([a-z]{1,8}=[a-z0-9]{0,8}; ){0,3}",
        token in "[A-Za-z0-9_-]{43}",
        after in "(; [a-z]{1,8}=[a-z0-9]{0,8}){0,3}",
    ) {
        let mut headers = HeaderMap::new();
        let line = format!("{before}behalf_session={token}{after}");
        headers.insert(header::COOKIE, HeaderValue::from_str(&line).unwrap());
        prop_assert_eq!(session_from_headers(&headers, false), SessionCookie::One(token.clone()));
        let twice = format!("{line}; behalf_session={token}");
        headers.insert(header::COOKIE, HeaderValue::from_str(&twice).unwrap());
        prop_assert_eq!(session_from_headers(&headers, false), SessionCookie::Duplicated);
    }

    #[test]
    fn the_members_list_parameters_take_anything(
        q in optional(), role in optional(), group in optional(), sort in optional(),
        dir in optional(), page in prop::option::of(any::<i64>()), after in optional(), before in optional(),
    ) {
        let params = ListParams { q, role, group, sort, dir, page, after, before };
        match ListQuery::parse(&params) {
            Ok(query) => {
                prop_assert!(query.page >= 1);
                prop_assert!(query.group.is_none_or(|g| g > 0));
                prop_assert!(query.after.is_none_or(|id| id > 0));
                prop_assert!(query.before.is_none_or(|id| id > 0));
                prop_assert_eq!(query.q.trim(), query.q.as_str());
            }
            // A refusal names the parameter at fault.
            Err(error) => prop_assert!(error.field().is_some(), "{error:?}"),
        }
    }

    #[test]
    fn the_audit_filters_take_anything(
        actor in optional(), subject in optional(), action in optional(),
        from in optional(), to in optional(), session in optional(),
    ) {
        let params = FilterParams { actor, subject, action, from, to, session };
        match AuditFilter::parse(&params) {
            Ok(filter) => {
                for id in [filter.actor, filter.subject, filter.session].into_iter().flatten() {
                    prop_assert!(id > 0);
                }
                for date in [&filter.from, &filter.to].into_iter().flatten() {
                    prop_assert_eq!(date.len(), 10, "{}", date);
                }
                if let Some(action) = &filter.action {
                    prop_assert!(action.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", action.as_str());
                }
            }
            Err(error) => prop_assert!(error.field().is_some(), "{error:?}"),
        }
    }
}
