//! Passwords in target URLs are never shown.
//!
//! A target may carry credentials (`http://user:pass@host/`); the prober
//! sends them as a Basic `Authorization` header. Everything a person or a
//! Prometheus server reads (result `target` and `final_url` in every output
//! format, error messages, serve's `/metrics`, `/` page and `/probe`
//! answers) shows the target with its password replaced by [`REDACTED`],
//! as blackbox_exporter never shows credentials. The user name stays, so
//! two targets that differ only by user remain two rows.
//!
//! Internally the original text is kept: serve matches `/probe?target=` and
//! hashes shards on it, so existing Prometheus configs keep working.

use std::borrow::Cow;

/// What a password is shown as.
pub const REDACTED: &str = "<redacted>";

/// `text` with the password of its URL's userinfo replaced by [`REDACTED`]
/// (`http://user:<redacted>@host/`); unchanged when there is none. Only the
/// authority is looked at: a `user:pass@` later in a path or query is data,
/// not credentials.
pub fn redact_password(text: &str) -> Cow<'_, str> {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(text);
    };
    let rest = &text[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    // The host is what follows the last `@`, as the target parser reads it.
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(text);
    };
    let Some(colon) = authority[..at].find(':') else {
        return Cow::Borrowed(text);
    };
    Cow::Owned(format!(
        "{}:{REDACTED}{}",
        &text[..start + colon],
        &text[start + at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_replaced_and_the_rest_kept() {
        let cases = [
            ("http://user:pass@host/", "http://user:<redacted>@host/"),
            (
                "HTTPS://u:p@[::1]:8443/a?b=c",
                "HTTPS://u:<redacted>@[::1]:8443/a?b=c",
            ),
            ("http://u:p:q@h", "http://u:<redacted>@h"),
            ("http://u:p@x@h/", "http://u:<redacted>@h/"),
            ("http://u:@h/", "http://u:<redacted>@h/"),
            // A user name alone is not a secret.
            ("http://user@host/", "http://user@host/"),
            ("http://host:8080/", "http://host:8080/"),
            // Credentials-looking text after the authority is left alone.
            (
                "http://h/p?next=http://a:b@c",
                "http://h/p?next=http://a:b@c",
            ),
            ("http://h/a:b@c", "http://h/a:b@c"),
            ("tcp://h:22", "tcp://h:22"),
            ("h:22", "h:22"),
            ("", ""),
        ];
        for (text, shown) in cases {
            assert_eq!(redact_password(text), shown, "{text}");
        }
    }
}
