"""What both Python baselines share: the targets file, a sans-IO HTTP/1.1
response reader, error classification and the output line.

Standard library only. The reader is fed bytes and told about the end of
the stream, and never touches a socket, so the asyncio baseline and the
threads baseline drive the same parser, as pulse's models drive one core.

Kinds Python cannot tell apart as pulse does: none of the socket kinds are
lost (OSError subclasses carry them), but a TLS failure during the read of
a response (after the handshake) is reported as `tls` by its ssl error,
where pulse may call a cut TLS stream `reset`.
"""

import json
import os
import re
import socket
import ssl
import sys
import time
from urllib.parse import urljoin, urlsplit

HEAD_CAP = 64 * 1024
BODY_CAP = 1024 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


class BadLine(Exception):
    """A FILE:LINE:COL error in the targets file."""


class ProbeError(Exception):
    """A failed probe: pulse's error kind and the words for it."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Target:
    def __init__(self, text, line):
        self.text, self.line = text, line
        self.kind, self.url, self.addr = None, None, None
        self.expect = [(200, 299)]
        self.contains, self.matches = None, None
        self.timeout, self.insecure, self.ca = None, False, None
        self.max_redirects = 10


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not m:
        raise ValueError(f"bad duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def fields(line):
    """Split a line as pulse does: `#` starts a comment only at the start of
    a field; a double-quoted value keeps its spaces (`\\"`, `\\\\` escape)."""
    out, i = [], 0
    while i < len(line):
        if line[i] in " \t":
            i += 1
            continue
        if line[i] == "#":
            break
        start, chars, quoted = i, [], False
        while i < len(line) and (quoted or line[i] not in " \t"):
            c = line[i]
            if c == '"':
                quoted = not quoted
            elif quoted and c == "\\" and i + 1 < len(line) and line[i + 1] in '"\\':
                i += 1
                chars.append(line[i])
            else:
                chars.append(c)
            i += 1
        if quoted:
            raise BadLine(f"{start + 1}:unterminated quote")
        out.append(("".join(chars), start + 1))
    return out


def parse_line(fs, n, path):
    text, col = fs[0]
    t = Target(text, n)
    bad = lambda c, msg: BadLine(f"{path}:{n}:{c}: {msg}")
    if text.startswith(("http://", "https://")):
        if not urlsplit(text).hostname:
            raise bad(col, f"not a URL: {text!r}")
        t.kind, t.url = "http", text
    elif text.startswith("tcp://"):
        t.kind, t.addr = "tcp", text[len("tcp://"):]
    elif text.startswith("icmp://"):
        t.kind = "icmp"
    elif "://" in text:
        raise bad(col, f"unknown scheme in {text!r}")
    elif ":" in text:
        t.kind, t.addr = "tcp", text
    else:
        t.kind = "icmp"
    for field, col in fs[1:]:
        key, has_value, value = field.partition("=")
        if t.kind != "http" and key != "timeout":
            raise bad(col, f"option {key!r} applies to http(s) targets only")
        try:
            if key == "insecure" and not has_value:
                t.insecure = True
            elif key == "expect" and has_value:
                t.expect = []
                for part in value.split(","):
                    lo, _, hi = part.partition("-")
                    lo, hi = int(lo), int(hi or lo)
                    if not 100 <= lo <= hi <= 599:
                        raise ValueError(f"bad status range {part!r}")
                    t.expect.append((lo, hi))
            elif key == "contains" and has_value:
                t.contains = value.encode()
            elif key == "matches" and has_value:
                t.matches = re.compile(value.encode())
            elif key == "timeout" and has_value:
                t.timeout = parse_duration(value)
            elif key == "ca" and has_value:
                t.ca = os.path.join(os.path.dirname(path), value)
            elif key == "redirects" and has_value:
                t.max_redirects = int(value)
            else:
                raise ValueError(f"unknown option {field!r}")
        except (ValueError, re.error) as e:
            raise bad(col, str(e)) from None
    return t


def read_targets(path):
    """Every target of the file, or exit 2 with every bad line (FILE:LINE:COL)."""
    targets, errors = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                fs = fields(line.rstrip("\n"))
                if fs:
                    targets.append(parse_line(fs, n, path))
            except BadLine as e:
                msg = str(e)
                if not msg.startswith(path):
                    col, _, what = msg.partition(":")
                    msg = f"{path}:{n}:{col}: {what}"
                errors.append(msg)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        print(f"{len(errors)} bad target line(s); nothing was probed", file=sys.stderr)
        sys.exit(2)
    return targets


def tls_context(t, cache={}):
    """One SSL context per TLS setting, shared by every probe."""
    key = (t.insecure, t.ca)
    if key not in cache:
        ctx = ssl.create_default_context()
        ctx.set_alpn_protocols(["http/1.1"])
        if t.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if t.ca:
            ctx.load_verify_locations(cafile=t.ca)
        cache[key] = ctx
    return cache[key]


def request(url):
    """(host, port, tls, request bytes) for a GET of `url`."""
    u = urlsplit(url)
    tls = u.scheme == "https"
    port = u.port or (443 if tls else 80)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    host = u.hostname if port == (443 if tls else 80) else f"{u.hostname}:{port}"
    if ":" in (u.hostname or "") and not host.startswith("["):
        host = f"[{u.hostname}]:{port}"
    head = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pulse-baseline-python\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    )
    return u.hostname, port, tls, head.encode()


class Response:
    """A sans-IO HTTP/1.1 response reader: `feed(bytes)`, then `eof()` at
    the end of the stream; `done` says the response is complete."""

    def __init__(self, keep_body):
        self.buf, self.keep = b"", keep_body
        self.status, self.headers = None, {}
        self.body, self.body_bytes, self.truncated = bytearray(), 0, False
        self.mode, self.left, self.done = None, 0, False

    def feed(self, data):
        self.buf += data
        if self.status is None:
            if not b"HTTP/".startswith(self.buf[:5]):
                raise ProbeError("protocol", f"not an HTTP response: {self.buf[:40]!r}")
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > HEAD_CAP:
                    raise ProbeError("protocol", f"response head larger than {HEAD_CAP} bytes")
                return
            self._head(self.buf[:end].decode("latin-1"))
            self.buf = self.buf[end + 4:]
        self._body()

    def _head(self, text):
        lines = text.split("\r\n")
        m = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: .*)?", lines[0])
        if not m:
            raise ProbeError("protocol", f"not an HTTP response: {lines[0][:60]!r}")
        self.status = int(m.group(1))
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProbeError("protocol", f"malformed header line {line[:60]!r}")
            self.headers[name.strip().lower()] = value.strip()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.mode = "chunked"
        elif "content-length" in self.headers:
            if not self.headers["content-length"].isdigit():
                raise ProbeError("protocol", "bad Content-Length")
            self.mode, self.left = "length", int(self.headers["content-length"])
        else:
            self.mode = "close"

    def _take(self, data):
        room = BODY_CAP - self.body_bytes
        if len(data) > room:
            data, self.truncated, self.done = data[:room], True, True
        if self.keep:
            self.body += data
        self.body_bytes += len(data)

    def _body(self):
        while not self.done:
            if self.mode == "close":
                self._take(self.buf)
                self.buf = b""
                return
            if self.mode == "length":
                data, self.buf = self.buf[: self.left], self.buf[self.left:]
                self.left -= len(data)
                self._take(data)
                self.done = self.done or self.left == 0
                return
            # chunked: a size line, the data, CRLF; size 0 ends it
            if self.left == 0:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                size = self.buf[:end].split(b";")[0].strip()
                if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size):
                    raise ProbeError("protocol", f"bad chunk size {size[:20]!r}")
                self.buf, self.left = self.buf[end + 2:], int(size, 16) + 2
                if self.left == 2:
                    self.done = True
                    return
            data, self.buf = self.buf[: self.left], self.buf[self.left:]
            self.left -= len(data)
            self._take(data[: max(0, len(data) - max(0, 2 - self.left))])
            if self.left > 0:
                return

    def eof(self):
        if self.done:
            return
        if self.status is None:
            if self.buf:
                raise ProbeError("protocol", "connection closed inside the response head")
            raise ProbeError("reset", "connection closed before the response head")
        if self.mode != "close":
            raise ProbeError("reset", f"connection closed after {self.body_bytes} body bytes")
        self.done = True


def redirect(t, resp, url, hops):
    """The next URL when `resp` is a redirect to follow, else None."""
    if resp.status in REDIRECTS and hops < t.max_redirects and "location" in resp.headers:
        nxt = urljoin(url, resp.headers["location"])
        if urlsplit(nxt).scheme not in ("http", "https"):
            raise ProbeError("protocol", f"redirect to an unusable location {nxt!r}")
        return nxt
    return None


def check(t, resp):
    """The status and content checks, as pulse makes them."""
    if not any(lo <= resp.status <= hi for lo, hi in t.expect):
        raise ProbeError("status", f"status {resp.status}")
    if t.contains is not None and t.contains not in resp.body:
        raise ProbeError("body", f"body does not contain {t.contains.decode()!r}")
    if t.matches is not None and not t.matches.search(bytes(resp.body)):
        raise ProbeError("body", f"body does not match /{t.matches.pattern.decode()}/")


def classify(e):
    """An exception as pulse's (kind, message)."""
    if isinstance(e, ProbeError):
        return e.kind, str(e)
    if isinstance(e, socket.gaierror):
        return "dns", f"resolve: {e}"
    if isinstance(e, ConnectionRefusedError):
        return "refused", str(e)
    if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset", str(e)
    if isinstance(e, (TimeoutError, socket.timeout)):
        return "timeout", "timed out"
    if isinstance(e, ssl.SSLError):
        return "tls", str(e)
    return "io", f"{type(e).__name__}: {e}"


def line(t, started, status=None, error=None):
    """One JSON output line."""
    kind, message = error if error else (None, None)
    return json.dumps(
        {
            "target": t.text,
            "line": t.line,
            "success": error is None,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
            "status": status,
            "error": {"kind": kind, "message": message} if error else None,
        }
    )


UNSUPPORTED = ("unsupported", "icmp: not probed (the standard library has no unprivileged ping)")
NOT_STARTED = ("cancelled", "scan interrupted before this probe started")
