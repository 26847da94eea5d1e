//! The requests the scenarios send, as a browser or a frontend would: sign-in over the
//! JSON API (a bearer token, and the session cookie for a client that keeps cookies),
//! pages with the cookie, and the pages' server functions (form posts from the app's
//! own origin). Each answers `Ok` only for the status the server documents for
//! success; anything else is an `Err` sentence naming the request, the status and the
//! error code.

use std::time::Duration;

use reqwest::{header, redirect::Policy, Client, Response};
use serde_json::{json, Value};

use super::target::Target;

/// No request of the bench waits longer than this for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the bench starts sessions on behalf (kept in the audit record).
pub const REASON: &str = "behalf bench: load test";

/// A client with its own cookie store (one browser), that follows no redirect.
pub fn cookie_client() -> Client {
    Client::builder()
        .cookie_store(true)
        // Traffic goes to URL only: never through HTTP_PROXY (it would see passwords).
        .no_proxy()
        .redirect(Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// A client without cookies (a frontend with a bearer token, or an attacker).
pub fn bare_client() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// A signed-in session: its bearer token and whom it acts as.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub token: String,
    pub member_id: i64,
}

/// `Ok(response)` when it came with `expected`; otherwise the request, the status and
/// the error's `code` in one sentence.
async fn expect(what: &str, sent: reqwest::Result<Response>, expected: u16) -> Result<Response, String> {
    let response = sent.map_err(|error| format!("{what}: no answer ({})", plain(error)))?;
    let status = response.status().as_u16();
    if status == expected {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| "(no error code)".to_string());
    Err(format!("{what}: {status} {code}"))
}

/// A transport error in a few words (reqwest's own text repeats the URL): what
/// reqwest says, and the deepest cause it wraps (e.g. "connection closed before
/// message completed" when the server dropped the connection).
fn plain(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_string();
    }
    if error.is_connect() {
        return "could not connect".to_string();
    }
    let error = error.without_url();
    let mut cause: &dyn std::error::Error = &error;
    while let Some(deeper) = cause.source() {
        cause = deeper;
    }
    if std::ptr::addr_eq(cause, &error) {
        error.to_string()
    } else {
        format!("{error}: {cause}")
    }
}

/// Signs in over the JSON API (`POST /api/v1/login`): the token, and for a client
/// with a cookie store, the session cookie too.
pub async fn sign_in(
    client: &Client,
    target: &Target,
    email: &str,
    password: &str,
) -> Result<SignedIn, String> {
    let sent = client
        .post(target.url("/api/v1/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await;
    let response = expect("POST /api/v1/login", sent, 200).await?;
    let body: Value = response
        .json()
        .await
        .map_err(|error| format!("POST /api/v1/login: unreadable answer ({})", plain(error)))?;
    match (body["token"].as_str(), body["member"]["id"].as_i64()) {
        (Some(token), Some(member_id)) => Ok(SignedIn {
            token: token.to_string(),
            member_id,
        }),
        _ => Err("POST /api/v1/login: the answer has no token or member".to_string()),
    }
}

/// A sign-in with a wrong password (the flood): the status, or the transport error.
pub async fn wrong_sign_in(client: &Client, target: &Target, email: &str) -> Result<u16, String> {
    client
        .post(target.url("/api/v1/login"))
        .json(&json!({ "email": email, "password": "not the password" }))
        .send()
        .await
        .map(|response| response.status().as_u16())
        .map_err(|error| format!("POST /api/v1/login: no answer ({})", plain(error)))
}

/// GETs a page with the client's cookie and reads it whole; `Ok` with the HTML on 200.
pub async fn page(client: &Client, target: &Target, path: &str) -> Result<String, String> {
    let what = format!("GET {path}");
    let response = expect(&what, client.get(target.url(path)).send().await, 200).await?;
    response
        .text()
        .await
        .map_err(|error| format!("{what}: the page did not arrive whole ({})", plain(error)))
}

/// GETs a page as the member, on behalf: `Err` unless it shows the impersonation banner.
pub async fn page_on_behalf(client: &Client, target: &Target, path: &str) -> Result<(), String> {
    let html = page(client, target, path).await?;
    if html.contains("aria-label=\"Impersonation banner\"") {
        Ok(())
    } else {
        Err(format!(
            "GET {path}: no impersonation banner (the session on behalf is over)"
        ))
    }
}

/// Calls a server function with a form, as the page's own JavaScript does (from the
/// app's origin, with the cookie); `Ok` on 200.
async fn server_fn(
    client: &Client,
    target: &Target,
    path: &str,
    form: &[(&str, &str)],
) -> Result<(), String> {
    let sent = client
        .post(target.url(path))
        .header(header::ORIGIN, target.origin())
        .header(header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await;
    let response = expect(&format!("POST {path}"), sent, 200).await?;
    response
        .bytes()
        .await
        .map(drop)
        .map_err(|error| format!("POST {path}: the answer did not arrive whole ({})", plain(error)))
}

/// Starts a session on behalf of `member_id` from the client's own session
/// (`/api/on-behalf/start`: the actor's password again and a reason); the cookie is
/// then the session on behalf's.
pub async fn start_on_behalf(
    client: &Client,
    target: &Target,
    member_id: i64,
    password: &str,
) -> Result<(), String> {
    let member = member_id.to_string();
    let form = [
        ("member_id", member.as_str()),
        ("password", password),
        ("reason", REASON),
        // Acting: the switch and orders scenarios place orders.
        ("mode", "act"),
    ];
    server_fn(client, target, "/api/on-behalf/start", &form).await
}

/// Leaves the session on behalf (`/api/on-behalf/leave`); the cookie is the actor's
/// own session again.
pub async fn leave(client: &Client, target: &Target) -> Result<(), String> {
    server_fn(client, target, "/api/on-behalf/leave", &[]).await
}

/// Places an order (`/api/orders/place`) as the client's member, on behalf or not.
pub async fn place_order(
    client: &Client,
    target: &Target,
    product_id: i64,
    quantity: u32,
) -> Result<(), String> {
    let (product, quantity) = (product_id.to_string(), quantity.to_string());
    let form = [("product_id", product.as_str()), ("quantity", quantity.as_str())];
    server_fn(client, target, "/api/orders/place", &form).await
}

/// The JSON answer of `what`, or why it cannot be read.
async fn json_of(what: &str, response: Response) -> Result<Value, String> {
    response
        .json()
        .await
        .map_err(|error| format!("{what}: unreadable answer ({})", plain(error)))
}

/// The `token` of a JSON answer.
fn token_in(what: &str, body: &Value) -> Result<String, String> {
    body["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: the answer has no token"))
}

/// Logs in on behalf of `member_id` over the JSON API (`POST /api/v1/alias_login`
/// with the actor's bearer token, password and a reason): the member's token. The
/// actor's token has ended.
pub async fn alias_login(
    client: &Client,
    target: &Target,
    token: &str,
    member_id: i64,
    password: &str,
) -> Result<String, String> {
    let what = "POST /api/v1/alias_login";
    let sent = client
        .post(target.url("/api/v1/alias_login"))
        .bearer_auth(token)
        .json(&json!({ "member_id": member_id, "password": password, "reason": REASON }))
        .send()
        .await;
    let body = json_of(what, expect(what, sent, 200).await?).await?;
    token_in(what, &body)
}

/// Leaves the session on behalf of `token` (`POST /api/v1/alias_logout`): the actor's
/// fresh token.
pub async fn alias_logout(client: &Client, target: &Target, token: &str) -> Result<String, String> {
    let what = "POST /api/v1/alias_logout";
    let sent = client
        .post(target.url("/api/v1/alias_logout"))
        .bearer_auth(token)
        .send()
        .await;
    let body = json_of(what, expect(what, sent, 200).await?).await?;
    token_in(what, &body)
}

/// Creates a one-click login link for `member_id` with the default lifetime
/// (`POST /api/v1/members/{id}/one_click_links`): the link's path.
pub async fn create_link(
    client: &Client,
    target: &Target,
    token: &str,
    member_id: i64,
) -> Result<String, String> {
    let what = "POST /api/v1/members/{id}/one_click_links";
    let sent = client
        .post(target.url(&format!("/api/v1/members/{member_id}/one_click_links")))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await;
    let body = json_of(what, expect(what, sent, 201).await?).await?;
    body["path"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: the answer has no path"))
}

/// POSTs a one-click link's Continue (no cookie, no origin: a new browser): `Ok` when
/// the answer is `expected` (303 for a usable link, 404 for any other).
pub async fn continue_link(
    client: &Client,
    target: &Target,
    path: &str,
    expected: u16,
) -> Result<(), String> {
    let what = if expected == 404 {
        "POST /one-click/{id}/{guessed token}".to_string()
    } else {
        "POST /one-click/{id}/{token}".to_string()
    };
    let response = expect(&what, client.post(target.url(path)).send().await, expected).await?;
    response
        .bytes()
        .await
        .map(drop)
        .map_err(|error| format!("{what}: the answer did not arrive whole ({})", plain(error)))
}

/// The first product of the catalogue (`GET /api/v1/products` with a bearer token).
pub async fn first_product(client: &Client, target: &Target, token: &str) -> Result<i64, String> {
    let sent = client
        .get(target.url("/api/v1/products"))
        .bearer_auth(token)
        .send()
        .await;
    let response = expect("GET /api/v1/products", sent, 200).await?;
    let body: Value = response
        .json()
        .await
        .map_err(|error| format!("GET /api/v1/products: unreadable answer ({})", plain(error)))?;
    body.as_array()
        .and_then(|products| products.iter().filter_map(|p| p["id"].as_i64()).min())
        .ok_or_else(|| {
            "the catalogue is empty: `behalf seed` creates it (make bench seeds the database)".to_string()
        })
}

/// The address of the "Next →" link of a members page (`<a href="…" rel="next">`),
/// its `&amp;`s undone; `None` on the last page.
pub fn next_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\"")?;
    let tag = &html[html[..at].rfind("<a ")?..at];
    let start = tag.find("href=\"")? + "href=\"".len();
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].replace("&amp;", "&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_of_a_members_page_is_found_and_unescaped() {
        let html = r#"<nav class="pagination" aria-label="Pagination"><a href="/admin/members?q=smi">« First</a><a href="/admin/members?q=smi&amp;page=2&amp;before=40" rel="prev">← Previous</a><span>Page 3</span><a href="/admin/members?q=smi&amp;page=4&amp;after=977" rel="next">Next →</a></nav>"#;
        assert_eq!(
            next_link(html).as_deref(),
            Some("/admin/members?q=smi&page=4&after=977")
        );
        let last = r#"<nav><a href="/admin/members?q=smi&amp;page=2&amp;before=40" rel="prev">← Previous</a><span>Page 3</span></nav>"#;
        assert_eq!(next_link(last), None);
        assert_eq!(next_link(""), None);
    }
}
