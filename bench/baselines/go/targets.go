package main

// The targets file, as pulse reads it (probe-core/src/target.rs), for the
// lines a baseline probes: http(s) URLs, tcp://host:port or host:port, with
// the options expect=, contains=, matches=, timeout=, insecure, ca= and
// redirects=. ICMP targets (icmp://host, a bare host) are read and reported
// `unsupported`: the standard library has no unprivileged ping.

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Target is one line of the targets file.
type Target struct {
	Text     string // the target as written (the line's first field)
	Line     int
	Kind     string // "http", "tcp" or "icmp"
	Addr     string // host:port for tcp
	URL      string // for http
	Expect   [][2]int
	Contains *string
	Matches  *regexp.Regexp
	Timeout  time.Duration // 0: the scan's --timeout
	Insecure bool
	CA       string
	MaxRedir int
}

// BadLine is a FILE:LINE:COL error.
type BadLine struct {
	File      string
	Line, Col int
	Msg       string
}

func (e BadLine) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// field is one whitespace-separated field, with its 1-based column.
type field struct {
	text string
	col  int
}

// fields splits a line like pulse: a `#` starts a comment only at the start
// of a field, and a double-quoted value keeps its spaces (`\"`, `\\` escape).
func fields(line string) ([]field, error) {
	var out []field
	i := 0
	for i < len(line) {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		if line[i] == '#' {
			break
		}
		start := i
		var b strings.Builder
		quoted := false
		for i < len(line) && (quoted || (line[i] != ' ' && line[i] != '\t')) {
			c := line[i]
			switch {
			case c == '"':
				quoted = !quoted
			case quoted && c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
				i++
				b.WriteByte(line[i])
			default:
				b.WriteByte(c)
			}
			i++
		}
		if quoted {
			return nil, fmt.Errorf("%d:unterminated quote", start+1)
		}
		out = append(out, field{b.String(), start + 1})
	}
	return out, nil
}

func parseStatus(v string) ([][2]int, error) {
	var set [][2]int
	for _, part := range strings.Split(v, ",") {
		lo, hi, found := strings.Cut(part, "-")
		if !found {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("bad status range %q", part)
		}
		set = append(set, [2]int{a, b})
	}
	return set, nil
}

// ReadTargets reads every line and returns every bad one at once.
func ReadTargets(path string) ([]Target, []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{err}
	}
	defer f.Close()
	var targets []Target
	var errs []error
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		fs, err := fields(sc.Text())
		if err != nil {
			col, msg, _ := strings.Cut(err.Error(), ":")
			c, _ := strconv.Atoi(col)
			errs = append(errs, BadLine{path, n, c, msg})
			continue
		}
		if len(fs) == 0 {
			continue
		}
		t, bad := parseLine(fs, n)
		if bad != nil {
			bad.File = path
			errs = append(errs, *bad)
			continue
		}
		targets = append(targets, t)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return targets, errs
}

func parseLine(fs []field, n int) (Target, *BadLine) {
	t := Target{Text: fs[0].text, Line: n, Expect: [][2]int{{200, 299}}, MaxRedir: 10}
	first := fs[0].text
	switch {
	case strings.HasPrefix(first, "http://") || strings.HasPrefix(first, "https://"):
		u, err := url.Parse(first)
		if err != nil || u.Host == "" {
			return t, &BadLine{Line: n, Col: fs[0].col, Msg: fmt.Sprintf("not a URL: %q", first)}
		}
		t.Kind, t.URL = "http", first
	case strings.HasPrefix(first, "tcp://"):
		t.Kind, t.Addr = "tcp", strings.TrimPrefix(first, "tcp://")
	case strings.HasPrefix(first, "icmp://"):
		t.Kind = "icmp"
	case strings.Contains(first, "://"):
		return t, &BadLine{Line: n, Col: fs[0].col, Msg: fmt.Sprintf("unknown scheme in %q", first)}
	case strings.Contains(first, ":"):
		t.Kind, t.Addr = "tcp", first
	default:
		t.Kind = "icmp"
	}
	for _, f := range fs[1:] {
		key, value, hasValue := strings.Cut(f.text, "=")
		bad := func(msg string) *BadLine { return &BadLine{Line: n, Col: f.col, Msg: msg} }
		if t.Kind != "http" && key != "timeout" {
			return t, bad(fmt.Sprintf("option %q applies to http(s) targets only", key))
		}
		switch {
		case key == "insecure" && !hasValue:
			t.Insecure = true
		case key == "expect" && hasValue:
			set, err := parseStatus(value)
			if err != nil {
				return t, bad(err.Error())
			}
			t.Expect = set
		case key == "contains" && hasValue:
			v := value
			t.Contains = &v
		case key == "matches" && hasValue:
			re, err := regexp.Compile(value)
			if err != nil {
				return t, bad(fmt.Sprintf("bad regex: %v", err))
			}
			t.Matches = re
		case key == "timeout" && hasValue:
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return t, bad(fmt.Sprintf("bad timeout %q", value))
			}
			t.Timeout = d
		case key == "ca" && hasValue:
			t.CA = value
		case key == "redirects" && hasValue:
			r, err := strconv.Atoi(value)
			if err != nil || r < 0 || r > 100 {
				return t, bad(fmt.Sprintf("bad redirects %q", value))
			}
			t.MaxRedir = r
		default:
			return t, bad(fmt.Sprintf("unknown option %q", f.text))
		}
	}
	return t, nil
}
