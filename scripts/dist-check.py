#!/usr/bin/env python3
"""Checks the release configuration against what cargo-dist plans from it.

Run by scripts/dist-check.sh (which installs `dist` first). It asks
`dist plan --output-format=json` what a release would contain and compares
that with what README "Release archives" promises: one `pulse` binary, one
archive and one `.sha256` per platform below. The expected platforms are
written here again on purpose: read from dist-workspace.toml, a dropped
target would drop out of the expectation too.

The shell installer and the release workflow wait for a GitHub repository
(dist-workspace.toml says why). The change README "Release archives"
prescribes for that day is made on a copy of the workspace, with a stand-in
repository URL that is never committed, and must give the installer for
every platform, downloading from that repository's releases, and the
workflow.

Then it proves that it can fail: it plans three broken copies of the
workspace (a target dropped, `[profile.dist]` removed, `pulse-bench` made
distributable) and requires each to be rejected with the reason.

`dist plan` reads the manifests and `cargo metadata`; it builds nothing and
needs no network once the crates in Cargo.lock are in cargo's cache.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the release archives are built for (README "Release archives").
TARGETS = {
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
}
APP = "pulse"


class Rot(Exception):
    """The configuration no longer says what the README promises."""


def plan(root: Path) -> dict:
    """`dist plan` of the workspace at `root`, as JSON."""
    out = subprocess.run(
        ["dist", "plan", "--output-format=json", "--no-local-paths"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise Rot(f"dist plan failed (exit {out.returncode}):\n{out.stderr.strip()}")
    return json.loads(out.stdout)


def check_profile(root: Path) -> None:
    """`[profile.dist]`: the release profile with LTO and stripped symbols.

    dist builds with `--profile dist` but does not say so in its plan, and
    cargo would fail only at build time: so the manifest is read here.
    """
    manifest = tomllib.loads((root / "Cargo.toml").read_text())
    profile = manifest.get("profile", {}).get("dist")
    if profile is None:
        raise Rot("Cargo.toml has no [profile.dist] (dist builds the archives with it)")
    if profile.get("inherits") != "release":
        raise Rot(f"[profile.dist] inherits {profile.get('inherits')!r}, not 'release'")
    if profile.get("lto") not in ("fat", True):
        raise Rot(f"[profile.dist] lto = {profile.get('lto')!r}, not fat LTO")
    if profile.get("strip") not in ("symbols", True):
        raise Rot(f"[profile.dist] strip = {profile.get('strip')!r}, not 'symbols'")


def check_plan(manifest: dict, installer_base: str | None = None) -> list[str]:
    """The plan ships `pulse` alone, for TARGETS, with checksums; and the
    shell installer, downloading from `installer_base`, when one is given.

    Returns the names of the files a release would upload.
    """
    releases = manifest.get("releases", [])
    names = sorted(r["app_name"] for r in releases)
    if names != [APP]:
        raise Rot(f"releases {names}: only {APP!r} is distributed")
    artifacts = manifest.get("artifacts", {})
    released = set(releases[0]["artifacts"])

    archives = {
        a: art for a, art in artifacts.items() if art["kind"] == "executable-zip"
    }
    planned = set()
    for name, art in archives.items():
        triples = art.get("target_triples", [])
        if len(triples) != 1:
            raise Rot(f"{name}: built for {triples}, not one target")
        triple = triples[0]
        planned.add(triple)
        ext = ".zip" if "windows" in triple else ".tar.xz"
        if name != f"{APP}-{triple}{ext}":
            raise Rot(f"{name}: expected {APP}-{triple}{ext}")
        exes = [x["name"] for x in art.get("assets", []) if x["kind"] == "executable"]
        exe = APP + (".exe" if "windows" in triple else "")
        if exes != [exe]:
            raise Rot(f"{name} holds executables {exes}, not just {exe!r}")
        checksum = art.get("checksum")
        if checksum != f"{name}.sha256" or artifacts.get(checksum, {}).get("kind") != "checksum":
            raise Rot(f"{name}: no sha256 checksum artifact (has {checksum!r})")
        if not {name, checksum} <= released:
            raise Rot(f"{name} or its checksum is not part of the {APP} release")
    if planned != TARGETS:
        missing = sorted(TARGETS - planned)
        extra = sorted(planned - TARGETS)
        raise Rot(f"archive targets differ: missing {missing}, unexpected {extra}")

    installers = {
        a: art for a, art in artifacts.items() if art["kind"] == "installer"
    }
    if installer_base is None:
        if installers:
            raise Rot(f"installers {sorted(installers)} planned with no repository to download from")
    else:
        shell = installers.get(f"{APP}-installer.sh")
        if shell is None:
            raise Rot(f"no shell installer (installers planned: {sorted(installers)})")
        # dist lists each musl target twice, as `-static` and `-dynamic`
        # (the installer picks the static build for both).
        covered = {t.removesuffix("-static").removesuffix("-dynamic") for t in shell.get("target_triples", [])}
        if covered != TARGETS:
            raise Rot(f"the shell installer covers {shell.get('target_triples')}, not {sorted(TARGETS)}")
        if f"{installer_base}/{APP}-installer.sh" not in shell.get("install_hint", ""):
            raise Rot(f"the shell installer is not fetched from {installer_base}: {shell.get('install_hint')!r}")
        if f"{APP}-installer.sh" not in released:
            raise Rot(f"the shell installer is not part of the {APP} release")

    # Nothing else in the plan may carry a binary either (another package's
    # archive, a second binary, an updater).
    for name, art in artifacts.items():
        for asset in art.get("assets", []):
            if asset["kind"] == "executable" and asset["name"] not in (APP, APP + ".exe"):
                raise Rot(f"{name} ships the executable {asset['name']!r}")
    return sorted(released)


def copy_workspace() -> Path:
    """A throwaway copy of the workspace's manifests and sources."""
    tmp = Path(tempfile.mkdtemp(prefix="pulse-dist-check-"))
    dst = tmp / "pulse"
    shutil.copytree(
        ROOT,
        dst,
        ignore=shutil.ignore_patterns(".git", "target", "reports", "fuzz"),
    )
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"dist-check: cannot edit {path.name}: {old!r} is not in it")
    path.write_text(text.replace(old, new, 1))


# Each: what is broken, how, and a word the rejection must contain.
BREAKAGES = [
    (
        "a target dropped from dist-workspace.toml",
        lambda root: edit(root / "dist-workspace.toml", '    "aarch64-apple-darwin",\n', ""),
        "aarch64-apple-darwin",
    ),
    (
        "[profile.dist] removed from Cargo.toml",
        lambda root: edit(root / "Cargo.toml", "[profile.dist]", "[profile.not-dist]"),
        "profile.dist",
    ),
    (
        "pulse-bench made distributable",
        lambda root: edit(
            root / "dist-workspace.toml",
            'packages = ["pulse"]',
            'packages = ["pulse", "pulse-bench"]',
        ),
        "pulse-bench",
    ),
]


def check(root: Path) -> list[str]:
    check_profile(root)
    return check_plan(plan(root))


# The stand-in for the repository pulse does not have yet: used only in the
# throwaway copy, to check the publishing change, never written to the tree.
STAND_IN_REPO = "https://github.com/stand-in-owner/pulse"


def publish(root: Path) -> None:
    """Make, in the copy at `root`, the change README "Release archives"
    prescribes once pulse has a GitHub repository, and `dist generate`."""
    edit(root / "Cargo.toml", 'repository = "https://example.invalid/pulse"', f'repository = "{STAND_IN_REPO}"')
    edit(root / "dist-workspace.toml", '# installers = ["shell"]', 'installers = ["shell"]')
    edit(root / "dist-workspace.toml", '# ci = "github"', 'ci = "github"')
    out = subprocess.run(["dist", "generate"], cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
        raise Rot(f"dist generate failed:\n{out.stderr.strip()}")
    if not (root / ".github/workflows/release.yml").is_file():
        raise Rot("dist generate wrote no .github/workflows/release.yml")


def check_published(root: Path) -> list[str]:
    publish(root)
    check_profile(root)
    version = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    return check_plan(plan(root), f"{STAND_IN_REPO}/releases/download/v{version}")


def main() -> int:
    try:
        files = check(ROOT)
    except Rot as e:
        print(f"dist-check: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"dist-check: the plan ships {len(files)} files:")
    for f in files:
        print(f"  {f}")

    root = copy_workspace()
    try:
        files = check_published(root)
    except Rot as e:
        print(f"dist-check: FAILED: with a GitHub repository: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root.parent)
    added = sorted(f for f in files if "installer" in f)
    print(f"dist-check: with a GitHub repository, the release adds {added} and the release workflow")

    for what, breakit, word in BREAKAGES:
        root = copy_workspace()
        try:
            breakit(root)
            try:
                check(root)
            except Rot as e:
                if word not in str(e):
                    print(f"dist-check: FAILED: {what}: rejected for another reason: {e}", file=sys.stderr)
                    return 1
                print(f"dist-check: {what}: rejected ({str(e).splitlines()[0]})")
                continue
            print(f"dist-check: FAILED: {what}: the check passed it", file=sys.stderr)
            return 1
        finally:
            shutil.rmtree(root.parent)
    print("dist-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
