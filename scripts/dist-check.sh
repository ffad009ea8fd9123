#!/usr/bin/env bash
# Checks the release configuration (dist-workspace.toml and Cargo.toml's
# [profile.dist]) against cargo-dist's own plan, so it cannot rot:
# scripts/dist-check.py says what it asserts. Run by scripts/test.sh.
#
# Installs cargo-dist first when `dist` is missing or another version: the
# version dist-workspace.toml names, from crates.io with `cargo install
# --locked`. That build is the cost of this check (README "Release
# archives" has the figure); once installed, the check takes seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want=$(sed -n 's/^cargo-dist-version = "\(.*\)"$/\1/p' dist-workspace.toml)
[ -n "$want" ] || { echo "dist-check: no cargo-dist-version in dist-workspace.toml" >&2; exit 1; }
have=$(dist --version 2>/dev/null || true)
if [ "$have" != "cargo-dist $want" ]; then
    echo "dist-check: installing cargo-dist $want (found: ${have:-none}); a few minutes on 2 cores"
    # Outside the coverage settings a caller may have on (scripts/test.sh):
    # cargo-dist is a tool from crates.io, not code to measure. Without
    # CARGO_TARGET_DIR, cargo install builds in a temporary directory and
    # removes it, rather than fill the workspace's.
    (. scripts/coverage-env.sh && coverage_off &&
        env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-dist --version "$want")
fi
python3 scripts/dist-check.py
