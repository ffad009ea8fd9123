#!/usr/bin/env python3
"""Summarise `cargo llvm-cov report --json --summary-only` for scripts/coverage.sh.

Usage: coverage-summary.py REPORT.json WORKSPACE_ROOT MIN_PERCENT

Prints line coverage per crate (lowest first), the ten files with the most
lines never run, and the total; exits 1 when the total is below
MIN_PERCENT, so the gate reads the same figure it prints.
"""

import json
import os
import sys

WEAKEST = 10


def crate_of(rel):
    """The workspace folder a file belongs to: models/<name>, or the top folder."""
    parts = rel.split("/")
    if parts[0] == "models" and len(parts) > 2:
        return "/".join(parts[:2])
    if len(parts) == 1 or parts[0] == "src":
        return "pulse (src/)"
    return parts[0]


def pct(covered, count):
    return 100.0 * covered / count if count else 100.0


def main():
    report, root, minimum = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(report) as f:
        data = json.load(f)["data"][0]
    root = os.path.realpath(root) + "/"
    crates = {}
    files = []
    for entry in data["files"]:
        lines = entry["summary"]["lines"]
        rel = entry["filename"]
        rel = rel[len(root):] if rel.startswith(root) else rel
        files.append((rel, lines["count"], lines["covered"]))
        c = crates.setdefault(crate_of(rel), [0, 0])
        c[0] += lines["count"]
        c[1] += lines["covered"]

    print(f"\n{'crate':<24} {'lines':>7} {'missed':>7} {'cover':>7}")
    for name, (count, covered) in sorted(crates.items(), key=lambda kv: pct(kv[1][1], kv[1][0])):
        print(f"{name:<24} {count:>7} {count - covered:>7} {pct(covered, count):>6.1f}%")

    print(f"\nthe {WEAKEST} files with the most lines never run:")
    print(f"{'file':<48} {'lines':>7} {'missed':>7} {'cover':>7}")
    for rel, count, covered in sorted(files, key=lambda f: f[2] - f[1])[:WEAKEST]:
        print(f"{rel:<48} {count:>7} {count - covered:>7} {pct(covered, count):>6.1f}%")

    total = data["totals"]["lines"]
    figure = pct(total["covered"], total["count"])
    print(
        f"\nline coverage: {figure:.1f}% ({total['covered']} of {total['count']} lines,"
        f" {len(files)} files; the gate is {minimum:g}%)"
    )
    if figure < minimum:
        print(f"coverage: {figure:.1f}% is below {minimum:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
