package main

// One probe: a TCP connect or an HTTP(S) GET, under one context whose
// deadline is the probe's absolute deadline, classified into pulse's error
// kinds where the standard library lets us tell them apart.
//
// What Go cannot separate as pulse does: a malformed response and a bad
// chunk are told apart only by net/http's error text (there are no typed
// errors for them), so `protocol` is found by wording; everything unknown
// is `io`.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const bodyCap = 1 << 20

// Result is one JSON line of output.
type Result struct {
	Target     string    `json:"target"`
	Line       int       `json:"line"`
	Success    bool      `json:"success"`
	DurationMs float64   `json:"duration_ms"`
	Status     *int      `json:"status"`
	Error      *ProbeErr `json:"error"`
}

// ProbeErr is a failure: pulse's kind and the words for it.
type ProbeErr struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func fail(kind, format string, args ...any) *ProbeErr {
	return &ProbeErr{kind, fmt.Sprintf(format, args...)}
}

// Prober holds what every probe shares: one client per TLS setting.
type Prober struct {
	clients map[string]*http.Client
	dir     string // the targets file's directory, for ca=
}

func NewProber(targetsFile string) *Prober {
	return &Prober{clients: map[string]*http.Client{}, dir: filepath.Dir(targetsFile)}
}

// client builds the clients before any probe runs (the map is then only read).
func (p *Prober) client(t *Target) (*http.Client, error) {
	key := fmt.Sprintf("%v|%s|%d", t.Insecure, t.CA, t.MaxRedir)
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	conf := &tls.Config{InsecureSkipVerify: t.Insecure, NextProtos: []string{"http/1.1"}}
	if t.CA != "" {
		pem, err := os.ReadFile(filepath.Join(p.dir, t.CA))
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca=%s: no certificate in the bundle", t.CA)
		}
		conf.RootCAs = pool
	}
	max := t.MaxRedir
	c := &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			TLSClientConfig:        conf,
			DisableKeepAlives:      true, // a new connection per probe, as pulse
			DisableCompression:     true, // no Accept-Encoding, as pulse
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      false,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > max {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	p.clients[key] = c
	return c, nil
}

// Probe runs one target under ctx (its deadline is the probe's).
func (p *Prober) Probe(ctx context.Context, t *Target) (status *int, perr *ProbeErr) {
	switch t.Kind {
	case "tcp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", t.Addr)
		if err != nil {
			return nil, classify(ctx, err)
		}
		conn.Close()
		return nil, nil
	case "http":
		return p.http(ctx, t)
	default:
		return nil, fail("unsupported", "icmp: not probed (the standard library has no unprivileged ping)")
	}
}

func (p *Prober) http(ctx context.Context, t *Target) (*int, *ProbeErr) {
	c, err := p.client(t)
	if err != nil {
		return nil, fail("io", "%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, fail("protocol", "%v", err)
	}
	req.Header.Set("User-Agent", "pulse-baseline-go")
	req.Header.Set("Accept", "*/*")
	resp, err := c.Do(req)
	if err != nil {
		return nil, classify(ctx, err)
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyCap))
	if err != nil {
		return &code, classify(ctx, err)
	}
	ok := false
	for _, r := range t.Expect {
		ok = ok || (code >= r[0] && code <= r[1])
	}
	if !ok {
		return &code, fail("status", "status %d", code)
	}
	if t.Contains != nil && !strings.Contains(string(body), *t.Contains) {
		return &code, fail("body", "body does not contain %q", *t.Contains)
	}
	if t.Matches != nil && !t.Matches.Match(body) {
		return &code, fail("body", "body does not match /%s/", t.Matches)
	}
	return &code, nil
}

// classify maps an error onto pulse's kinds. The context decides first:
// its deadline is `timeout`, its cancellation (SIGINT) is `cancelled`.
func classify(ctx context.Context, err error) *ProbeErr {
	msg := err.Error()
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fail("cancelled", "scan interrupted: %s", msg)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fail("timeout", "%s", msg)
	case errors.As(err, &dns):
		return fail("dns", "%s", msg)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail("refused", "%s", msg)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fail("reset", "%s", msg)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &record), strings.Contains(msg, "tls:"):
		return fail("tls", "%s", msg)
	// net/http has no typed errors for these: its own words.
	case strings.Contains(msg, "malformed HTTP"), strings.Contains(msg, "chunk"),
		strings.Contains(msg, "header"), strings.Contains(msg, "invalid"):
		return fail("protocol", "%s", msg)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fail("timeout", "%s", msg)
	}
	return fail("io", "%s", msg)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
