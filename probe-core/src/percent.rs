//! Percent-encoding of the path and query pulse sends.
//!
//! A target's URL, or a redirect's `Location`, may hold characters that HTTP
//! does not allow in a request line: `"`, `\`, `{`, `|`, non-ASCII text,
//! a space in a `Location`. `http::Uri` lets some of them through as they
//! are (a server may then reject the request, or read it differently from
//! a proxy in front of it) and refuses others (`<`, a backtick). Both are
//! encoded here, as browsers and curl do, before the URI is parsed:
//! everything outside RFC 3986's `pchar` (unreserved, sub-delims, `:`, `@`)
//! and `/`, plus `?` in the query, becomes `%XX` per UTF-8 byte. A valid
//! `%XX` escape is left alone, so an already encoded URL is sent unchanged;
//! a `%` that starts no escape becomes `%25`.
//!
//! Control characters are left as they are, so that the URI parser still
//! refuses them: a target with a control character in it is a typo or an
//! attack, not a path.

use std::borrow::Cow;

/// `tail` (a path, optionally `?query`, optionally `#fragment`) encoded for
/// the request line; the fragment is dropped, since it is never sent.
pub fn encode_path_query(tail: &str) -> Cow<'_, str> {
    let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
    let bytes = tail.as_bytes();
    let mut in_query = false;
    let mut out: Option<String> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'?' {
            in_query = true;
        }
        let keep = allowed(b, in_query) || (b == b'%' && escape_at(bytes, i));
        match (&mut out, keep) {
            (None, true) => {}
            (None, false) => {
                let mut s = String::with_capacity(tail.len() + 8);
                s.push_str(&tail[..i]);
                push_escaped(&mut s, b);
                out = Some(s);
            }
            (Some(s), true) => s.push(char::from(b)),
            (Some(s), false) => push_escaped(s, b),
        }
    }
    out.map_or(Cow::Borrowed(tail), Cow::Owned)
}

/// `url` (`scheme://authority` then a path, query or fragment) with its
/// path and query encoded by [`encode_path_query`]; the authority is left to
/// the URI parser.
pub fn encode_url(url: &str) -> Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return encode_path_query(url);
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match encode_path_query(&url[end..]) {
        Cow::Borrowed(t) if t.len() == url.len() - end => Cow::Borrowed(url),
        tail => Cow::Owned(format!("{}{tail}", &url[..end])),
    }
}

/// RFC 3986 `pchar` and `/` (and `?` in the query), `%` aside. Control
/// characters count as allowed here so that they reach the URI parser,
/// which refuses them.
fn allowed(b: u8, in_query: bool) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'_' | b'~' // unreserved
                | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' // sub-delims
                | b':' | b'@' | b'/'
        )
        || (in_query && b == b'?')
        || b.is_ascii_control()
}

/// Whether `bytes[i]` (a `%`) starts a valid `%XX` escape.
fn escape_at(bytes: &[u8], i: usize) -> bool {
    bytes
        .get(i + 1..i + 3)
        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
}

fn push_escaped(s: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    s.push('%');
    s.push(char::from(HEX[usize::from(b >> 4)]));
    s.push(char::from(HEX[usize::from(b & 0xf)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_http_forbids_is_encoded() {
        let cases = [
            ("/a\"b", "/a%22b"),
            ("/a\\b", "/a%5Cb"),
            ("/é", "/%C3%A9"),
            ("/a b", "/a%20b"),
            ("/a{b}|^`<>[]", "/a%7Bb%7D%7C%5E%60%3C%3E%5B%5D"),
            ("/a?q=\"x\"&é", "/a?q=%22x%22&%C3%A9"),
            // `?` is data in the query, a delimiter only the first time.
            ("/a?b?c", "/a?b?c"),
            // Valid escapes stay; a lone `%` is encoded.
            ("/a%20b%2Fc", "/a%20b%2Fc"),
            ("/a%zz%4", "/a%25zz%254"),
            // What RFC 3986 allows is sent as written.
            ("/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~"),
            ("", ""),
            // The fragment is never sent.
            ("/x#frag \"", "/x"),
        ];
        for (tail, sent) in cases {
            assert_eq!(encode_path_query(tail), sent, "{tail}");
        }
        assert!(matches!(encode_path_query("/plain?q=1"), Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_left_for_the_parser_to_refuse() {
        assert_eq!(encode_path_query("/a\u{1}b"), "/a\u{1}b");
    }

    #[test]
    fn urls_keep_their_authority() {
        assert_eq!(
            encode_url("http://u:p@[::1]:80/a b?c d#e"),
            "http://u:p@[::1]:80/a%20b?c%20d"
        );
        assert_eq!(encode_url("https://h"), "https://h");
        assert!(matches!(encode_url("https://h/x"), Cow::Borrowed(_)));
    }
}
