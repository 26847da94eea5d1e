//! The server the bench drives: its address, checked before anything is sent (plain
//! `http://`, a host and a port, nothing else), and the URLs of its routes.

use std::net::IpAddr;

/// A validated `http://host[:port]` address: the only place the bench sends traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http://host[:port]` as the server sees it in `Origin` (the port only when it
    /// is not 80, as the `Host` header a client sends).
    origin: String,
    /// The host as written, IPv6 without its brackets.
    host: String,
    /// The port, 80 when none is given.
    port: u16,
}

impl Target {
    /// Checks `text` and keeps it: `http://` only (this build has no TLS), a host,
    /// an optional port, and no credentials, path, query or fragment.
    pub fn parse(text: &str) -> Result<Target, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(format!(
                "{text}: https is not supported (behalf bench has no TLS); give the server's own http:// address, e.g. http://127.0.0.1:3000"
            ));
        }
        if !lower.starts_with("http://") {
            return Err(format!(
                "{text}: the URL must start with http://, e.g. http://127.0.0.1:3000"
            ));
        }
        let url = reqwest::Url::parse(text).map_err(|error| format!("{text}: not a valid URL ({error})"))?;
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("{text}: the URL names no host"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text}: the URL must not carry a user name or password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text}: give the server's address only (scheme, host and port), without a path, query or fragment"
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{text}: the URL has no usable port"))?;
        if port == 0 {
            return Err(format!("{text}: port 0 is not a server's port"));
        }
        Ok(Target {
            origin: url.origin().ascii_serialization(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
        })
    }

    /// The full URL of `path` on the target. A path the server sent (a `Next` link, a
    /// one-click path) that does not start with one `/` is taken as a path all the
    /// same: `@other:port/x` or `//other/x` never reaches another host.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.origin, path.trim_start_matches('/'))
    }

    /// The value a browser on the app's own pages sends as `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The port, when the server runs on this machine's loopback (127.0.0.0/8, ::1 or
    /// `localhost`): then its process can be looked up to read its memory.
    pub fn loopback_port(&self) -> Option<u16> {
        let loopback = self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback.then_some(self.port)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_http_address_is_kept_with_its_port() {
        let target = Target::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(target.origin(), "http://127.0.0.1:3000");
        assert_eq!(target.url("/api/v1/login"), "http://127.0.0.1:3000/api/v1/login");
        assert_eq!(target.loopback_port(), Some(3000));
        // A trailing slash is the same address; port 80 is not written in the origin.
        let target = Target::parse(" http://LocalHost/ ").unwrap();
        assert_eq!(target.origin(), "http://localhost");
        assert_eq!(target.loopback_port(), Some(80));
        let target = Target::parse("http://[::1]:8080").unwrap();
        assert_eq!(target.origin(), "http://[::1]:8080");
        assert_eq!(target.loopback_port(), Some(8080));
    }

    #[test]
    fn a_remote_host_has_no_loopback_port() {
        let target = Target::parse("http://10.0.0.5:3000").unwrap();
        assert_eq!(target.loopback_port(), None);
        assert_eq!(
            Target::parse("http://bench.example:3000")
                .unwrap()
                .loopback_port(),
            None
        );
    }

    #[test]
    fn anything_but_a_plain_http_address_is_refused_with_the_reason() {
        let refused = |text: &str| Target::parse(text).unwrap_err();
        assert!(refused("https://127.0.0.1:3000").contains("https is not supported"));
        assert!(refused("ftp://127.0.0.1").contains("must start with http://"));
        assert!(refused("127.0.0.1:3000").contains("must start with http://"));
        assert!(refused("http://").contains("not a valid URL"));
        assert!(refused("http://127.0.0.1:99999").contains("not a valid URL"));
        assert!(refused("http://127.0.0.1:0").contains("port 0"));
        assert!(refused("http://u:p@127.0.0.1:3000").contains("user name or password"));
        assert!(refused("http://127.0.0.1:3000/admin").contains("without a path"));
        assert!(refused("http://127.0.0.1:3000/?q=1").contains("without a path"));
        assert!(refused("http://127.0.0.1:3000/#top").contains("without a path"));
    }

    #[test]
    fn a_path_from_the_server_never_names_another_host() {
        let target = Target::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(
            target.url("/admin/members"),
            "http://127.0.0.1:3000/admin/members"
        );
        assert_eq!(
            target.url("@evil.example:80/x"),
            "http://127.0.0.1:3000/@evil.example:80/x"
        );
        assert_eq!(
            target.url("//evil.example/x"),
            "http://127.0.0.1:3000/evil.example/x"
        );
    }
}
