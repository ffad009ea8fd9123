//! URI helpers of the HTTP exchange: which statuses redirect, resolving a
//! `Location` against the request URI (RFC 3986), and a URI's host and port
//! as sockets and TLS need them.

use http::Uri;

use crate::percent::encode_url;

/// Whether `status` is a redirect a client follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Resolve a `Location` header against the request URI (RFC 3986, enough of
/// it for redirects: absolute, scheme-relative, absolute-path, relative-path).
///
/// A location that starts with a scheme (RFC 3986 §3.1) is absolute: it is
/// followed only when that scheme is http or https and it parses with an
/// authority. Anything else (`file:`, `mailto:`, `javascript:`, a broken
/// `http://[::1`) is `None`, never retried as a path on the same server.
pub fn join_location(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.trim();
    if let Some(scheme) = scheme_of(location) {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        return encode_url(location)
            .parse::<Uri>()
            .ok()
            .filter(|u| u.authority().is_some());
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let joined = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let (path, query) = location
            .split_once('?')
            .map_or((location, None), |(p, q)| (p, Some(q)));
        let merged = if path.starts_with('/') {
            path.to_string()
        } else {
            let base_path = base.path();
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            let dir = if dir.is_empty() { "/" } else { dir };
            format!("{dir}{path}")
        };
        let path = remove_dot_segments(&merged);
        match query {
            Some(q) => format!("{scheme}://{authority}{path}?{q}"),
            None => format!("{scheme}://{authority}{path}"),
        }
    };
    // The location's own `"`, space or non-ASCII text is sent encoded.
    encode_url(&joined).parse().ok()
}

/// The scheme a URI reference starts with, if any: RFC 3986 §3.1's
/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` followed by `:`. A reference
/// whose first segment has a colon (`foo:bar`) is a scheme by this rule too,
/// as RFC 3986 §4.2 says; `/a:b` and `./a:b` are not, since `/` and `.`
/// cannot start a scheme.
fn scheme_of(reference: &str) -> Option<&str> {
    let (scheme, _) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// RFC 3986 §5.2.4 for an absolute path: drop `.` segments, and let `..`
/// remove the segment before it (never above the root).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // `/a/..` and `/a/.` name a directory: keep the final slash.
                if i == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// The host of a URI without IPv6 brackets (what sockets and TLS need).
pub fn host_of(uri: &Uri) -> String {
    let h = uri.host().unwrap_or_default();
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
        .to_string()
}

/// The port of a URI, defaulting by scheme.
pub fn port_of(uri: &Uri) -> u16 {
    uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    })
}
