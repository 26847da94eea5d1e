//! THE declarative list of what each route does, for sessions on behalf (Step 11):
//! a read (allowed in both modes, and joins the view trail with the label the member
//! reads in their Access history), a write (only when acting), a protected action
//! (never on behalf) or something about the session itself. The request pipeline
//! looks the route up once, before any handler runs, and asks `app::mode` whether the
//! request's session may; no handler checks a mode. The security matrix checks that
//! every route of the server is listed here, with the class its own table states.

use app::mode::Access::{self, Protected, Read, Session, Write};
use axum::http::Method;

/// One route: its method, its path (server functions by their path, the JSON API by
/// its template), what it does, and what the member reads in their Access history
/// when it was viewed on their behalf.
#[derive(Clone, Copy, Debug)]
pub struct RouteAccess {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub label: Option<&'static str>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    label: Option<&'static str>,
) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
        label,
    }
}

const PROFILE: Option<&str> = Some("Profile");
const ORDERS: Option<&str> = Some("Orders");
const SESSIONS: Option<&str> = Some("Sessions");
const HISTORY: Option<&str> = Some("Access history");
const MEMBERS: Option<&str> = Some("Members");
const GROUPS: Option<&str> = Some("Groups");
const PRODUCTS: Option<&str> = Some("Products");

/// Every server function and JSON API operation, and the routes outside both.
pub const ROUTES: &[RouteAccess] = &[
    // Sign-in and identity: about the session, whatever the mode.
    route("POST", "/api/login", Session, None),
    route("POST", "/api/logout", Session, None),
    route("POST", "/api/whoami", Session, None),
    route("POST", "/api/notice", Session, None),
    // The member's own area.
    route("POST", "/api/orders/list", Read, ORDERS),
    route("POST", "/api/orders/place", Write, None),
    route("POST", "/api/account/profile", Write, None),
    route("POST", "/api/account/sessions", Read, SESSIONS),
    route("POST", "/api/account/revoke-session", Protected, None),
    route("POST", "/api/account/access-history", Read, HISTORY),
    // Login on behalf: starting another is the rule's to refuse (no nesting).
    route("POST", "/api/on-behalf/preview", Session, None),
    route("POST", "/api/on-behalf/start", Session, None),
    route("POST", "/api/on-behalf/elevate", Session, None),
    route("POST", "/api/on-behalf/leave", Session, None),
    route("POST", "/api/on-behalf/candidates", Session, None),
    // Members and groups: reading is reading; every change is protected (roles,
    // groups, admin access, email, proxy login permissions).
    route("POST", "/api/members/list", Read, MEMBERS),
    route("POST", "/api/members/get", Read, MEMBERS),
    route("POST", "/api/members/update", Protected, None),
    route("POST", "/api/members/lookup", Read, MEMBERS),
    route("POST", "/api/members/groups", Read, GROUPS),
    route("POST", "/api/groups/list", Read, GROUPS),
    route("POST", "/api/groups/get", Read, GROUPS),
    route("POST", "/api/groups/create", Protected, None),
    route("POST", "/api/groups/rename", Protected, None),
    route("POST", "/api/groups/delete", Protected, None),
    route("POST", "/api/groups/add-member", Protected, None),
    route("POST", "/api/groups/remove-member", Protected, None),
    // One-click links, the audit trail, oversight: never on behalf.
    route("POST", "/api/one_click/list", Protected, None),
    route("POST", "/api/one_click/create", Protected, None),
    route("POST", "/api/one_click/revoke", Protected, None),
    route("POST", "/api/audit/list", Protected, None),
    route("POST", "/api/audit/session", Protected, None),
    route("POST", "/api/oversight/impersonations", Protected, None),
    route("POST", "/api/oversight/end", Protected, None),
    route("POST", "/api/oversight/end-all", Protected, None),
    route("POST", "/api/oversight/member-sessions", Protected, None),
    route("POST", "/api/oversight/revoke-member-sessions", Protected, None),
    // Step 12: what the member does about access to their account (and asking a
    // member for access) is never done on anyone's behalf.
    route("POST", "/api/consent/page", Protected, None),
    route("POST", "/api/consent/setting", Protected, None),
    route("POST", "/api/consent/answer", Protected, None),
    route("POST", "/api/consent/grant", Protected, None),
    route("POST", "/api/consent/revoke", Protected, None),
    route("POST", "/api/consent/read", Protected, None),
    route("POST", "/api/consent/end", Protected, None),
    route("POST", "/api/consent/request", Protected, None),
    // The actor's window waits for its session on behalf to end.
    route("GET", "/api/on-behalf/events", Session, None),
    // The JSON API.
    route("POST", "/api/v1/login", Session, None),
    route("POST", "/api/v1/logout", Session, None),
    route("GET", "/api/v1/profile", Read, PROFILE),
    route("POST", "/api/v1/alias_login", Session, None),
    route("POST", "/api/v1/alias_elevate", Session, None),
    route("POST", "/api/v1/alias_logout", Session, None),
    route("POST", "/api/v1/profile/password", Protected, None),
    route("GET", "/api/v1/products", Read, PRODUCTS),
    route("GET", "/api/v1/orders", Read, ORDERS),
    route("POST", "/api/v1/orders", Write, None),
    route("GET", "/api/v1/sessions", Read, SESSIONS),
    route("DELETE", "/api/v1/sessions/{id}", Protected, None),
    route("GET", "/api/v1/access_history", Read, HISTORY),
    route("GET", "/api/v1/audit", Protected, None),
    route("GET", "/api/v1/members", Read, MEMBERS),
    route("GET", "/api/v1/members/{id}", Read, MEMBERS),
    route("PATCH", "/api/v1/members/{id}", Protected, None),
    route(
        "PUT",
        "/api/v1/members/{id}/proxy_login_permission",
        Protected,
        None,
    ),
    route("GET", "/api/v1/groups", Read, GROUPS),
    route("POST", "/api/v1/groups", Protected, None),
    route("GET", "/api/v1/groups/{id}/members", Read, GROUPS),
    route("PATCH", "/api/v1/groups/{id}", Protected, None),
    route("DELETE", "/api/v1/groups/{id}", Protected, None),
    route("PUT", "/api/v1/groups/{id}/members/{member_id}", Protected, None),
    route(
        "DELETE",
        "/api/v1/groups/{id}/members/{member_id}",
        Protected,
        None,
    ),
    route("POST", "/api/v1/members/{id}/one_click_links", Protected, None),
    route("GET", "/api/v1/members/{id}/one_click_links", Protected, None),
    route("DELETE", "/api/v1/one_click_links/{id}", Protected, None),
    route("GET", "/api/v1/impersonations", Protected, None),
    route("DELETE", "/api/v1/impersonations/{id}", Protected, None),
    route("GET", "/api/v1/profile/on_behalf_settings", Protected, None),
    route("PUT", "/api/v1/profile/on_behalf_settings", Protected, None),
    route("POST", "/api/v1/members/{id}/access_requests", Protected, None),
    route("GET", "/api/v1/profile/access_requests", Protected, None),
    route(
        "POST",
        "/api/v1/profile/access_requests/{id}/approve",
        Protected,
        None,
    ),
    route(
        "POST",
        "/api/v1/profile/access_requests/{id}/deny",
        Protected,
        None,
    ),
    route("GET", "/api/v1/profile/access_grants", Protected, None),
    route("POST", "/api/v1/profile/access_grants", Protected, None),
    route("DELETE", "/api/v1/profile/access_grants/{id}", Protected, None),
    route("GET", "/api/v1/profile/notices", Protected, None),
    route("POST", "/api/v1/profile/notices/{id}/read", Protected, None),
    route(
        "DELETE",
        "/api/v1/profile/on_behalf/{session_id}",
        Protected,
        None,
    ),
    route("GET", "/api/v1/profile/events", Protected, None),
    // Outside /api.
    route("GET", "/healthz", Session, None),
    route("GET", "/api/v1/openapi.json", Session, None),
    route("GET", "/admin/audit.csv", Protected, None),
    // A one-click link signs its own member in, replacing whatever session there was.
    route("GET", "/one-click/{member_id}/{token}", Session, None),
    route("POST", "/one-click/{member_id}/{token}", Session, None),
];

/// The pages (all GET), by leading path segments, most specific first: the audit viewer and
/// oversight are protected; the on-behalf window and the sign-in page are about the
/// session; every other page is a read.
const PAGES: &[(&str, Access, Option<&str>)] = &[
    ("/admin/audit", Protected, None),
    ("/admin/impersonations", Protected, None),
    ("/account/access", Protected, None),
    ("/on-behalf", Session, None),
    ("/login", Session, None),
    ("/account/orders", Read, ORDERS),
    ("/account/sessions", Read, SESSIONS),
    ("/account/access-history", Read, HISTORY),
    ("/admin/members", Read, MEMBERS),
    ("/admin/groups", Read, GROUPS),
];

/// What `method` on `template` does, and its label. `template` is a server
/// function's path, an API route's template, or a page's path. A route this list
/// does not know (none, by the matrix's check) reads when it is a GET and writes
/// otherwise: never more than a write.
pub fn access_of(method: &Method, template: &str, page: bool) -> (Access, Option<&'static str>) {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    if let Some(found) = ROUTES
        .iter()
        .find(|route| route.path == template && route.method == method)
    {
        return (found.access, found.label);
    }
    if page && method == "GET" {
        if template == "/" {
            return (Read, PROFILE);
        }
        // By whole segments: `/admin/audit` and `/admin/audit/…`, not `/admin/auditx`.
        let found = PAGES.iter().find(|(prefix, _, _)| {
            template
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        return found.map_or((Read, None), |(_, access, label)| (*access, *label));
    }
    if method == "GET" {
        (Read, None)
    } else {
        (Write, None)
    }
}

/// A request path as the page router will read it: percent-decoded, and refused when
/// it is not in its plain form — a `.` or `..` segment, an empty segment (`//`), a
/// backslash — because the router resolves those into
/// another page than the one the path names (`/admin/./audit` renders the audit
/// viewer), and a route must be classified as the page that will answer it.
pub fn plain_path(raw: &str) -> Option<String> {
    // Bytes that are not UTF-8 cannot make a dot segment: they are left to the
    // handler (a one-click path answers them with its one 404).
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let inner = decoded.strip_suffix('/').unwrap_or(&decoded);
    let plain = decoded.starts_with('/')
        && !decoded.contains('\\')
        && inner
            .split('/')
            .skip(1)
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    (plain || decoded == "/").then(|| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_classified() {
        assert_eq!(plain_path("/admin/audit").as_deref(), Some("/admin/audit"));
        assert_eq!(
            plain_path("/account/orders/").as_deref(),
            Some("/account/orders/")
        );
        assert_eq!(plain_path("/").as_deref(), Some("/"));
        assert_eq!(plain_path("/admin/%61udit").as_deref(), Some("/admin/audit"));
        assert!(plain_path("/one-click/7/abc%FF").is_some());
        for bad in [
            "/admin/./audit",
            "/on-behalf/%2e%2e/admin/audit",
            "/login/%2E%2E/admin/audit",
            "/one-click/../admin/audit",
            "//admin/audit",
            "/admin//audit",
            "/admin\\audit",
            "/admin/%5caudit",
        ] {
            assert_eq!(plain_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn routes_are_classified_by_method_and_template() {
        let post = Method::POST;
        assert_eq!(access_of(&post, "/api/orders/place", false).0, Write);
        assert_eq!(access_of(&Method::GET, "/api/v1/orders", false), (Read, ORDERS));
        assert_eq!(access_of(&post, "/api/v1/orders", false).0, Write);
        assert_eq!(access_of(&post, "/api/v1/profile/password", false).0, Protected);
        assert_eq!(
            access_of(&Method::GET, "/admin/audit/sessions/3", true).0,
            Protected
        );
        assert_eq!(access_of(&Method::HEAD, "/account/orders", true), (Read, ORDERS));
        assert_eq!(access_of(&Method::GET, "/", true), (Read, PROFILE));
        // Unknown: a GET reads, anything else writes.
        assert_eq!(access_of(&Method::GET, "/api/v1/nothing", false).0, Read);
        assert_eq!(access_of(&post, "/api/nothing", false).0, Write);
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.method, route.path)),
                "{} {} twice",
                route.method,
                route.path
            );
        }
    }
}
