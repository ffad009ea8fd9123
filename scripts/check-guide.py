#!/usr/bin/env python3
"""Check docs/guide.md's links and figures against the tree and the report.

    python3 scripts/check-guide.py [--final] [--root DIR]

The study guide makes every claim point at a file, a line or a figure, so
the guide is only as good as those pointers. This checks each of them:

- every relative link `[text](../path)` names a file or folder that exists;
- a link to a line, `[`text`](../path/file.rs#L123)` (or `#L123-L130`),
  names a line that exists, and that line (the first of a range) contains
  the text between the backticks: when the code moves, the link fails here
  instead of pointing at the wrong line;
- a link to a markdown heading, `(../file.md#some-heading)`, names a
  heading that file has (GitHub's anchor rules);
- every figure, `(report: "...")`, quotes one line of reports/README.md
  verbatim (at least 15 characters): reports/ is regenerated, and a figure
  the report no longer shows must not stay in the guide;
- README.md links to docs/guide.md.

Two kinds of problem are warnings until the guide is final, because the
parts they point at are written elsewhere and merged later: a quote that is
a placeholder (`TODO(...)`), and a link on a line marked `<!-- baseline -->`
(the Go/Python baselines). With `--final` both are failures, and so is
`TODO(` anywhere in the guide.

Prints `FILE:LINE: problem` for each failure (and `FILE:LINE: warning: ...`
for each warning) and exits 1 if there was any failure. Standard library
only: scripts/test.sh runs it with the machine's python3.
"""

import argparse
import os
import re
import sys
import unicodedata

GUIDE = "docs/guide.md"
REPORT = "reports/README.md"
README = "README.md"

# A markdown link: [text](target). The text may hold backticks; the target
# has no spaces or closing parenthesis (the guide's targets never do).
LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)\)")
# A figure: (report: "quoted text"). The quote holds no double quote.
FIGURE = re.compile(r'\(report: "([^"]*)"\)')
FIGURE_OPEN = re.compile(r'\(report: "')
# A line fragment: #L12 or #L12-L20.
LINE_FRAGMENT = re.compile(r"^L(\d+)(?:-L(\d+))?$")
BASELINE_MARK = "<!-- baseline -->"
TODO = "TODO("
MIN_QUOTE = 15


def github_anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped,
    spaces to hyphens (duplicates get -1, -2, handled by the caller)."""
    text = re.sub(r"`", "", heading.strip()).lower()
    out = []
    for ch in text:
        if ch in (" ", "-"):
            out.append("-")
        elif ch == "_" or unicodedata.category(ch)[0] in ("L", "N"):
            out.append(ch)
    return "".join(out)


def anchors_of(path):
    """Every heading anchor of the markdown file at `path`."""
    seen = {}
    anchors = set()
    in_code = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if in_code or not m:
                continue
            base = github_anchor(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            anchors.add(base if n == 0 else f"{base}-{n}")
    return anchors


class Checker:
    def __init__(self, root, final):
        self.root = root
        self.final = final
        self.failures = 0
        self.warnings = 0
        self.links = 0
        self.figures = 0
        self.file_lines = {}
        self.file_anchors = {}
        self.fix, self.fixes = False, []

    def problem(self, where, line, message, soft=False):
        """A failure, or a warning when `soft` and the guide is not final."""
        if soft and not self.final:
            self.warnings += 1
            print(f"{where}:{line}: warning: {message}")
        else:
            self.failures += 1
            print(f"{where}:{line}: {message}")

    def lines_of(self, path):
        if path not in self.file_lines:
            with open(path, encoding="utf-8", errors="replace") as f:
                self.file_lines[path] = f.read().splitlines()
        return self.file_lines[path]

    def check_link(self, n, text, target, soft):
        """One relative link on guide line `n`."""
        self.links += 1
        path, _, fragment = target.partition("#")
        base = os.path.dirname(os.path.join(self.root, GUIDE))
        full = os.path.normpath(os.path.join(base, path)) if path else os.path.join(self.root, GUIDE)
        if not full.startswith(os.path.normpath(self.root) + os.sep):
            self.problem(GUIDE, n, f"{target}: points outside the repository", soft)
            return
        if not os.path.exists(full):
            self.problem(GUIDE, n, f"{target}: no such file", soft)
            return
        if not fragment:
            return
        m = LINE_FRAGMENT.match(fragment)
        if m:
            self.check_line_link(n, text, target, full, int(m.group(1)), m.group(2), soft)
        elif full.endswith(".md"):
            if full not in self.file_anchors:
                self.file_anchors[full] = anchors_of(full)
            if fragment not in self.file_anchors[full]:
                self.problem(GUIDE, n, f"{target}: no heading with anchor #{fragment}", soft)
        else:
            self.problem(GUIDE, n, f"{target}: a fragment on a code file must be #L<N> or #L<N>-L<M>", soft)

    def check_line_link(self, n, text, target, full, first, last, soft):
        if os.path.isdir(full):
            self.problem(GUIDE, n, f"{target}: a line of a folder", soft)
            return
        lines = self.lines_of(full)
        end = int(last) if last else first
        if first < 1 or end < first:
            self.problem(GUIDE, n, f"{target}: bad line range", soft)
            return
        if end > len(lines):
            self.problem(GUIDE, n, f"{target}: the file has {len(lines)} lines", soft)
            return
        # `code`, or ``code with `backticks` in it`` (markdown's own rule:
        # the fence is as many backticks as the code never holds in a row).
        m = re.fullmatch(r"(`+) ?(.+?) ?\1", text)
        if m and len(m.group(1)) == 1 and "`" in m.group(2):
            m = None  # `a` and `b`: two code spans, not one
        if not m:
            self.problem(
                GUIDE, n, f"{target}: a line link's text must be `code` found on that line (got {text!r})", soft
            )
            return
        code = m.group(2).replace("\\|", "|")  # a pipe escaped for a table cell
        if code not in lines[first - 1] and self.fix:
            # --fix: the line moved; point at the nearest line that has it.
            found = [i + 1 for i, l in enumerate(lines) if code in l]
            if found and not last:
                best = min(found, key=lambda i: abs(i - first))
                self.fixes.append((n, target, target.rsplit("#", 1)[0] + f"#L{best}"))
                return
        if code not in lines[first - 1]:
            self.problem(
                GUIDE,
                n,
                f"{target}: line {first} does not contain {code!r} (it reads {lines[first - 1].strip()!r})",
                soft,
            )

    def check_figures(self, n, line, report_lines):
        opened = len(FIGURE_OPEN.findall(line))
        found = FIGURE.findall(line)
        if opened != len(found):
            self.problem(GUIDE, n, 'a (report: "...") quote must open and close on one line')
        for quote in found:
            self.figures += 1
            if quote.startswith(TODO):
                self.problem(GUIDE, n, f'placeholder figure (report: "{quote}")', soft=True)
                continue
            if len(quote) < MIN_QUOTE:
                self.problem(GUIDE, n, f"figure quote {quote!r} is shorter than {MIN_QUOTE} characters")
                continue
            if not any(quote in r for r in report_lines):
                self.problem(GUIDE, n, f"figure quote {quote!r} is not on any line of {REPORT}")

    def check_guide(self):
        guide = os.path.join(self.root, GUIDE)
        if not os.path.exists(guide):
            self.problem(GUIDE, 1, "the guide does not exist")
            return
        report_path = os.path.join(self.root, REPORT)
        report_lines = self.lines_of(report_path) if os.path.exists(report_path) else []
        if not report_lines:
            self.problem(REPORT, 1, "the report is missing or empty: no figure can be checked")
        in_code = False
        for n, line in enumerate(self.lines_of(guide), start=1):
            if self.final and TODO in line:
                self.problem(GUIDE, n, "TODO( left in the final guide")
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                # Code excerpts are quoted, not linked: nothing to resolve.
                continue
            soft = BASELINE_MARK in line
            for text, target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:: not ours to check offline
                if target.startswith("#"):
                    anchors = self.file_anchors.setdefault(guide, anchors_of(guide))
                    self.links += 1
                    if target[1:] not in anchors:
                        self.problem(GUIDE, n, f"{target}: no heading with that anchor in the guide")
                    continue
                self.check_link(n, text, target, soft)
            self.check_figures(n, line, report_lines)
        if in_code:
            self.problem(GUIDE, n, "a ``` code block is never closed")

    def check_readme(self):
        path = os.path.join(self.root, README)
        for n, line in enumerate(self.lines_of(path), start=1):
            if re.search(r"\]\((\./)?docs/guide\.md(#[^)]*)?\)", line):
                return
        self.problem(README, 1, "README.md does not link to docs/guide.md")


def main():
    p = argparse.ArgumentParser(description="Check docs/guide.md's links and figures.")
    p.add_argument("--final", action="store_true", help="placeholders and unresolved baseline links fail too")
    p.add_argument(
        "--fix",
        action="store_true",
        help="rewrite a line link whose text moved to the nearest line that has it, then check",
    )
    p.add_argument(
        "--root",
        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        help="the repository (default: this script's parent folder)",
    )
    args = p.parse_args()
    root = os.path.abspath(args.root)
    if args.fix:
        c = Checker(root, args.final)
        c.fix, c.fixes = True, []
        c.check_guide()
        path = os.path.join(root, GUIDE)
        with open(path, encoding="utf-8") as f:
            text = f.read().split("\n")
        for n, old, new in c.fixes:
            text[n - 1] = text[n - 1].replace(f"]({old})", f"]({new})")
            print(f"{GUIDE}:{n}: {old} -> {new}", file=sys.stderr)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(text))
    c = Checker(root, args.final)
    c.check_guide()
    c.check_readme()
    print(
        f"check-guide: {c.links} links, {c.figures} figures; "
        f"{c.failures} failure(s), {c.warnings} warning(s)",
        file=sys.stderr,
    )
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
