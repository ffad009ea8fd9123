//! Which redirect hops a probe may follow.
//!
//! `pulse scan` and `pulse check` follow any http(s) redirect, as curl and
//! blackbox_exporter do: the user named the target and reads the result.
//! `pulse serve` is different: it probes on its own, on a schedule and on
//! request, and `/probe` accepts only configured targets so that it cannot
//! be pointed at arbitrary hosts. A configured server that answers
//! `302 Location: http://10.0.0.5:6379/` would undo that (server-side request
//! forgery through a redirect), so serve gives its plan a [`RedirectPolicy`]
//! that lists where a hop may go, and the session checks every hop against it
//! before it connects anywhere. The check lives in the session, so every model
//! gets it from the same code.
//!
//! Hosts are compared as written (case-insensitively, IPv6 brackets
//! stripped), never resolved: `localhost` and `127.0.0.1` are different hosts
//! to this check, which errs on the side of refusing.

use std::fmt;
use std::sync::Arc;

use http::Uri;

use crate::session::{host_of, port_of};
use crate::target::Target;

/// Where redirects may lead.
#[derive(Debug, Clone, Default)]
pub enum RedirectPolicy {
    /// Follow every http(s) redirect (scan, check, and serve with
    /// `--allow-any-redirect` or `--allow-any-target`).
    #[default]
    Any,
    /// Follow a hop only to the probe's own target or to one of these.
    /// Shared (`Arc`) because every session of a round holds the policy.
    Listed(Arc<[AllowedHost]>),
}

/// One place a redirect may go: a host, and optionally the scheme and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// `Some(true)` for https only, `Some(false)` for http only, `None` for
    /// either (an operator's `--allow-redirect-host`).
    pub https: Option<bool>,
    /// The host as written, lowercased, without IPv6 brackets.
    pub host: String,
    /// `None` allows every port (an `--allow-redirect-host` without a port).
    pub port: Option<u16>,
}

impl AllowedHost {
    /// Exactly the scheme, host and port of `uri`.
    pub fn of_uri(uri: &Uri) -> AllowedHost {
        AllowedHost {
            https: Some(uri.scheme_str() == Some("https")),
            host: host_of(uri).to_ascii_lowercase(),
            port: Some(port_of(uri)),
        }
    }

    /// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`, for `--allow-redirect-host`:
    /// either scheme, and every port when none is given.
    pub fn parse(text: &str) -> Result<AllowedHost, String> {
        let text = text.trim();
        if text.is_empty() || text.contains(['/', '@', '?', '#', ' ']) {
            return Err(format!(
                "`{text}` is not HOST or HOST:PORT (no scheme, path or user name)"
            ));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: missing `]` after the IPv6 address"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(format!("`{text}`: expected `:PORT` after `]`")),
                },
            }
        } else {
            match text.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, Some(p)),
                Some(_) => {
                    return Err(format!(
                        "`{text}`: write an IPv6 address in brackets, like [::1]:8080"
                    ));
                }
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host (write HOST or HOST:PORT)"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{text}`: port `{p}` is not 1-65535"))
            })
            .transpose()?;
        Ok(AllowedHost {
            https: None,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a hop to (`https`, `host`, `port`) stays here. An http entry
    /// on port 80 also admits https on 443 of the same host: the upgrade
    /// almost every site answers its plain-http URL with.
    fn admits(&self, https: bool, host: &str, port: u16) -> bool {
        if !self.host.eq_ignore_ascii_case(host) {
            return false;
        }
        let exact = self.https.is_none_or(|h| h == https) && self.port.is_none_or(|p| p == port);
        let upgrade = self.https == Some(false) && self.port == Some(80) && https && port == 443;
        exact || upgrade
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

impl RedirectPolicy {
    /// `pulse serve`'s default: a hop may go to the host and port of any
    /// configured http(s) target (its own included), plus `extra`.
    pub fn configured(targets: &[Target], extra: &[AllowedHost]) -> RedirectPolicy {
        let mut list: Vec<AllowedHost> = Vec::new();
        let hosts = targets
            .iter()
            .filter_map(|t| t.http.as_ref())
            .map(|h| AllowedHost::of_uri(&h.uri));
        for a in hosts.chain(extra.iter().cloned()) {
            if !list.contains(&a) {
                list.push(a);
            }
        }
        RedirectPolicy::Listed(list.into())
    }

    /// Whether a probe of `origin` may follow a redirect to `hop`. The
    /// probe's own target is always allowed (another path on the same
    /// server, or its http to https upgrade), whatever the list says.
    pub fn allows(&self, origin: &Uri, hop: &Uri) -> bool {
        let RedirectPolicy::Listed(list) = self else {
            return true;
        };
        let https = hop.scheme_str() == Some("https");
        let (host, port) = (host_of(hop), port_of(hop));
        AllowedHost::of_uri(origin).admits(https, &host, port)
            || list.iter().any(|a| a.admits(https, &host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse_target;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    fn listed(targets: &[&str], extra: &[&str]) -> RedirectPolicy {
        let targets: Vec<Target> = targets.iter().map(|t| parse_target(t).unwrap()).collect();
        let extra: Vec<AllowedHost> = extra
            .iter()
            .map(|e| AllowedHost::parse(e).unwrap())
            .collect();
        RedirectPolicy::configured(&targets, &extra)
    }

    #[test]
    fn any_allows_everything() {
        let p = RedirectPolicy::Any;
        assert!(p.allows(&uri("http://a/"), &uri("http://10.0.0.5:6379/")));
    }

    #[test]
    fn own_host_and_port_and_the_https_upgrade() {
        let p = listed(&["http://a.test/x"], &[]);
        let o = uri("http://a.test/x");
        assert!(p.allows(&o, &uri("http://a.test/other")));
        assert!(p.allows(&o, &uri("http://A.TEST:80/other")));
        assert!(p.allows(&o, &uri("https://a.test/x")));
        assert!(!p.allows(&o, &uri("https://a.test:8443/x")));
        assert!(!p.allows(&o, &uri("http://a.test:8080/x")));
        assert!(!p.allows(&o, &uri("http://b.test/x")));
        // The upgrade is http:80 to https:443 only, not the other way.
        let s = uri("https://a.test/x");
        let p = listed(&["https://a.test/x"], &[]);
        assert!(!p.allows(&s, &uri("http://a.test/x")));
        // A non-default port keeps its scheme.
        let p = listed(&["http://127.0.0.1:8080/"], &[]);
        let o = uri("http://127.0.0.1:8080/");
        assert!(p.allows(&o, &uri("http://127.0.0.1:8080/y")));
        assert!(!p.allows(&o, &uri("https://127.0.0.1:8080/y")));
        assert!(!p.allows(&o, &uri("http://127.0.0.1:9090/y")));
    }

    #[test]
    fn other_configured_targets_are_allowed() {
        let p = listed(
            &[
                "http://127.0.0.1:8080/",
                "https://[::1]:8443/h",
                "tcp://127.0.0.1:22",
            ],
            &[],
        );
        let o = uri("http://127.0.0.1:8080/");
        assert!(p.allows(&o, &uri("https://[::1]:8443/elsewhere")));
        assert!(!p.allows(&o, &uri("http://[::1]:8443/elsewhere")));
        // A tcp target is not an HTTP server the file vouches for.
        assert!(!p.allows(&o, &uri("http://127.0.0.1:22/")));
    }

    #[test]
    fn extra_hosts_from_the_flag() {
        let p = listed(&["http://a.test/"], &["b.test", "c.test:8080", "[::1]:9"]);
        let o = uri("http://a.test/");
        assert!(p.allows(&o, &uri("http://b.test:1234/")));
        assert!(p.allows(&o, &uri("https://b.test/")));
        assert!(p.allows(&o, &uri("https://c.test:8080/")));
        assert!(!p.allows(&o, &uri("http://c.test/")));
        assert!(p.allows(&o, &uri("http://[::1]:9/")));
        assert!(!p.allows(&o, &uri("http://[::1]:10/")));
    }

    #[test]
    fn flag_syntax() {
        let a = AllowedHost::parse("Example.TEST:8080").unwrap();
        assert_eq!(a.host, "example.test");
        assert_eq!(a.port, Some(8080));
        assert_eq!(a.to_string(), "example.test:8080");
        assert_eq!(AllowedHost::parse("[::1]").unwrap().to_string(), "[::1]");
        assert!(
            AllowedHost::parse("http://x/")
                .unwrap_err()
                .contains("not HOST or HOST:PORT")
        );
        assert!(AllowedHost::parse(":80").is_err());
        assert!(AllowedHost::parse("x:0").is_err());
        assert!(AllowedHost::parse("x:y").is_err());
        assert!(AllowedHost::parse("::1").is_err());
        assert!(AllowedHost::parse("").is_err());
        assert!(AllowedHost::parse("u@x").is_err());
    }
}
