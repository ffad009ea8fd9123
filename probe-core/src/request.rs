//! What an HTTP target sends beyond a plain GET: the method, extra headers,
//! a body, and credentials read from a file.
//!
//! The targets file names them (`method=POST header="Host: a.example"
//! body_file=req.json auth_file=secret`), [`crate::target`] checks each
//! option's text here, and [`crate::plan::Plan::new`] reads the files
//! through its caller's reader (the core does no IO), so every model and
//! every native stack sends the same bytes.
//!
//! Credentials come only from a file (`auth_file=`): a targets file is
//! often committed, logged or shown on a status page, and a header option
//! holding a token would put it there. The header value is marked
//! sensitive, so `Debug` prints `Sensitive`, and nothing pulse writes
//! (results, metrics, pages, errors) ever contains it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};

/// Largest request body pulse sends (`body=` or `body_file=`): 64 KiB.
/// A probe's request is a health check, not an upload; a larger file is
/// almost always the wrong file, and the cap keeps one bad line from making
/// every probe of a big file hold a copy of it.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// Largest `auth_file=` pulse reads: 4 KiB holds any bearer token a real
/// service issues (JWTs run to 1-2 KiB), and a larger file is not one.
pub const MAX_AUTH_FILE: usize = 4 * 1024;

/// Most `header=` options one target may carry; far above any real probe,
/// and with [`MAX_HEADER_VALUE`] it keeps a request within what servers
/// accept (nginx: 8 KiB a line, 32 KiB in all by default).
pub const MAX_HEADERS: usize = 32;

/// Longest value of one `header=` option.
pub const MAX_HEADER_VALUE: usize = 4 * 1024;

/// The methods `method=` accepts: what a health check sends. CONNECT and
/// TRACE are not checks of a service and are refused.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Headers pulse sets itself, refused in `header=`: it owns the framing
/// (one connection per probe, `Connection: close`, the body's length) and
/// credentials belong in `auth_file=`.
const OWNED_HEADERS: [(&str, &str); 7] = [
    (
        "connection",
        "pulse opens one connection per probe and sends `Connection: close`",
    ),
    ("content-length", "pulse sets it from the body"),
    (
        "transfer-encoding",
        "pulse sends the body with a Content-Length",
    ),
    ("te", "pulse reads one response per connection"),
    ("upgrade", "pulse speaks HTTP/1.1 only"),
    ("trailer", "pulse sends no trailers"),
    (
        "authorization",
        "put credentials in a file and name it with auth_file=, so they stay out of the targets file",
    ),
];

/// Bytes a target sends that may come from a file: as written until the
/// plan reads the file, then the bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    /// The bytes themselves (`body="..."`, or a file once read).
    Bytes(Arc<[u8]>),
    /// A file to read (`body_file=`), path as written; relative paths are
    /// resolved by the caller.
    File(PathBuf),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Payload::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// Credentials for the `Authorization` header, from `auth_file=`.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// The file to read, path as written.
    File(PathBuf),
    /// The header value read from it, marked sensitive.
    Header(HeaderValue),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::File(p) => write!(f, "File({})", p.display()),
            Auth::Header(_) => f.write_str("Header(<redacted>)"),
        }
    }
}

/// What one hop of a target's exchange sends besides its URI: the method,
/// the extra headers, the `Authorization` value and the body. The session
/// and every native stack build their requests from it and apply
/// [`RequestParts::follow`] on a redirect, so all of them send the same.
#[derive(Debug, Clone)]
pub struct RequestParts {
    /// The method of this hop.
    pub method: Method,
    /// The target's `header=` options, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The `Authorization` value from `auth_file=` (sensitive).
    pub authorization: Option<HeaderValue>,
    /// The body of this hop (empty for none).
    pub body: Arc<[u8]>,
}

impl RequestParts {
    /// The first hop's parts for `h`. Fails when a file the target names
    /// was not read (a target that did not go through
    /// [`crate::plan::Plan::new`]); the message names the option.
    pub fn of(h: &crate::target::HttpTarget) -> Result<RequestParts, String> {
        let body = match &h.body {
            None => Arc::from(&[][..]),
            Some(Payload::Bytes(b)) => b.clone(),
            Some(Payload::File(p)) => {
                return Err(format!("body_file={} was not read", p.display()));
            }
        };
        let authorization = match &h.auth {
            None => None,
            Some(Auth::Header(v)) => Some(v.clone()),
            Some(Auth::File(p)) => return Err(format!("auth_file={} was not read", p.display())),
        };
        Ok(RequestParts {
            method: h.method.clone(),
            headers: h.headers.clone(),
            authorization,
            body,
        })
    }

    /// Whether this hop sends a `Content-Length` (and its body): the
    /// methods that carry one, even when it is empty.
    pub fn sends_body(&self) -> bool {
        takes_body(&self.method)
    }

    /// Adjust for following a `status` redirect, as browsers, curl, reqwest
    /// and ureq do: 303 turns any method but HEAD into a GET without a
    /// body; 301 and 302 do so for POST (the historical behaviour RFC 9110
    /// §15.4.2 allows); 307 and 308 repeat the request as it was.
    pub fn follow(&mut self, status: u16) {
        let to_get = match status {
            303 => self.method != Method::HEAD,
            301 | 302 => self.method == Method::POST,
            _ => false,
        };
        if to_get {
            self.method = Method::GET;
            self.body = Arc::from(&[][..]);
        }
    }
}

/// `method=`: one of [`METHODS`], upper case as HTTP writes it.
pub fn parse_method(value: &str) -> Result<Method, String> {
    if METHODS.contains(&value) {
        return value
            .parse()
            .map_err(|_| format!("invalid method `{value}`"));
    }
    let upper = value.to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        return Err(format!(
            "method `{value}` must be written in upper case: method={upper}"
        ));
    }
    Err(format!(
        "unknown method `{value}`; one of {}",
        METHODS.join(", ")
    ))
}

/// Whether `method` may carry a body: the methods whose requests have one.
pub fn takes_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// `header="Name: value"`: a valid field name that pulse does not own, and
/// a value without control characters. The value is never echoed in an
/// error (it may be a secret the user put there by mistake).
pub fn parse_header(value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, field)) = value.split_once(':') else {
        return Err(format!(
            "header `{}` needs a colon between name and value, like header=\"X-Probe: pulse\"",
            name_part(value)
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err("header has no name before the colon, like header=\"X-Probe: pulse\"".into());
    }
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!(
            "invalid header name `{}` (letters, digits and !#$%&'*+-.^_`|~ only)",
            name_part(name)
        )
    })?;
    if let Some((_, why)) = OWNED_HEADERS.iter().find(|(n, _)| *n == header.as_str()) {
        return Err(format!("header `{name}` cannot be set: {why}"));
    }
    let field = field.trim();
    if field.len() > MAX_HEADER_VALUE {
        return Err(format!(
            "header `{name}` value is {} bytes, more than the maximum of {} KiB",
            field.len(),
            MAX_HEADER_VALUE / 1024
        ));
    }
    let value = HeaderValue::from_str(field)
        .map_err(|_| format!("header `{name}` value has characters a header cannot carry"))?;
    Ok((header, value))
}

/// The part of a header option that is safe to echo: its name, at most 64
/// characters of it.
fn name_part(text: &str) -> String {
    let name = text.split(':').next().unwrap_or_default().trim();
    name.chars().take(64).collect()
}

/// The `Authorization` value in an `auth_file=`: its first non-blank line
/// is `basic USER:PASSWORD` or `bearer TOKEN` (the scheme in any case).
/// Errors never quote the file.
pub fn parse_auth_file(bytes: &[u8]) -> Result<HeaderValue, String> {
    if bytes.len() > MAX_AUTH_FILE {
        return Err(format!(
            "is {} bytes, more than the maximum of {} KiB for a credentials file",
            bytes.len(),
            MAX_AUTH_FILE / 1024
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?;
    const FORM: &str = "its first line must be `basic USER:PASSWORD` or `bearer TOKEN`";
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| format!("is empty; {FORM}"))?;
    let (scheme, rest) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("has no credentials after the scheme; {FORM}"))?;
    let rest = rest.trim();
    let value = match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            if !rest.contains(':') {
                return Err(format!("has no `:` between user and password; {FORM}"));
            }
            format!("Basic {}", base64(rest.as_bytes()))
        }
        "bearer" => format!("Bearer {rest}"),
        _ => return Err(format!("names an unknown scheme; {FORM}")),
    };
    let mut header = HeaderValue::from_str(&value)
        .map_err(|_| "has characters a header cannot carry".to_string())?;
    header.set_sensitive(true);
    Ok(header)
}

/// Standard base64 with padding (RFC 4648 §4), for Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_upper_case_and_known() {
        assert_eq!(parse_method("POST"), Ok(Method::POST));
        assert_eq!(
            parse_method("post").unwrap_err(),
            "method `post` must be written in upper case: method=POST"
        );
        assert!(
            parse_method("BREW")
                .unwrap_err()
                .starts_with("unknown method `BREW`; one of GET")
        );
        assert!(parse_method("CONNECT").is_err());
    }

    #[test]
    fn headers_parse_and_owned_ones_are_refused() {
        let (n, v) = parse_header("Host:  a.example ").unwrap();
        assert_eq!((n.as_str(), v.to_str().unwrap()), ("host", "a.example"));
        assert!(
            parse_header("X-Empty:").is_ok(),
            "an empty value is a value"
        );
        assert!(
            parse_header("Content-Length: 5")
                .unwrap_err()
                .starts_with("header `Content-Length` cannot be set")
        );
        let auth = parse_header("Authorization: Bearer s3cret").unwrap_err();
        assert!(auth.contains("auth_file="), "{auth}");
        assert!(!auth.contains("s3cret"), "{auth}");
        assert!(
            parse_header("no colon")
                .unwrap_err()
                .contains("needs a colon")
        );
        assert!(
            parse_header("bad name: x")
                .unwrap_err()
                .contains("invalid header name")
        );
        let control = parse_header("X-A: a\u{1}b").unwrap_err();
        assert!(!control.contains('\u{1}'), "{control}");
        assert!(parse_header(&format!("X-Big: {}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn auth_files_give_sensitive_headers_and_quote_nothing() {
        let basic = parse_auth_file(b"\n  basic Aladdin:open sesame\n").unwrap();
        assert_eq!(
            basic.to_str().unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(basic.is_sensitive());
        let bearer = parse_auth_file(b"Bearer abc.def").unwrap();
        assert_eq!(bearer.to_str().unwrap(), "Bearer abc.def");
        for bad in [
            &b""[..],
            b"token-only",
            b"digest x",
            b"basic nocolon",
            b"\xff\xfe",
        ] {
            let e = parse_auth_file(bad).unwrap_err();
            assert!(!e.contains("nocolon") && !e.contains("token-only"), "{e}");
        }
        assert!(
            parse_auth_file(&vec![b'a'; 5000])
                .unwrap_err()
                .contains("maximum")
        );
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out);
        }
    }

    #[test]
    fn redirects_turn_posts_into_gets_as_clients_do() {
        let mut parts = RequestParts {
            method: Method::POST,
            headers: Vec::new(),
            authorization: None,
            body: Arc::from(&b"x"[..]),
        };
        let mut kept = parts.clone();
        kept.follow(307);
        assert_eq!((kept.method, &kept.body[..]), (Method::POST, &b"x"[..]));
        parts.follow(302);
        assert_eq!(
            (parts.method.clone(), &parts.body[..]),
            (Method::GET, &b""[..])
        );
        let mut put = RequestParts {
            method: Method::PUT,
            ..parts.clone()
        };
        put.follow(301);
        assert_eq!(put.method, Method::PUT, "301/302 change only POST");
        put.follow(303);
        assert_eq!(put.method, Method::GET);
        let mut head = RequestParts {
            method: Method::HEAD,
            ..parts
        };
        head.follow(303);
        assert_eq!(head.method, Method::HEAD);
    }

    #[test]
    fn debug_never_shows_credentials() {
        let auth = Auth::Header(parse_auth_file(b"bearer s3cret").unwrap());
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
