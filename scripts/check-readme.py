#!/usr/bin/env python3
"""Run every shell command README.md shows, as a reader would type it.

    python3 scripts/check-readme.py --list
    python3 scripts/check-readme.py --run --bin DIR [--timeout 180]
    python3 scripts/check-readme.py --self-test

The README's examples are only worth reading if they work when pasted, so
scripts/test.sh installs pulse (`cargo install --path . --locked --root
TMP`) and runs them all with this script. The convention it checks:

- A shell session is a fenced ```console block. A line starting with `$ `
  is a command (a line ending in `\\` continues onto the next); every other
  line is output shown to the reader and is not compared (timings vary).
- A fenced block tagged sh, bash, shell or zsh, or any other fenced block
  with a line starting with `$ `, is an error: every command the README
  shows is either run here or visibly excluded.
- A command's trailing shell comment may say what to expect. `# exits N`
  (at the start of the comment) means exit status N is the right answer (the
  default is 0). `# untested: REASON` excludes the command, and the reason
  is printed with every run. Both are ordinary comments to a reader's shell.
- The commands run in README order, in one bash process (variables, `$!`
  and background jobs carry over, as in one terminal; no `pipefail`, as in
  an interactive shell), in a fresh temporary directory holding a copy of
  `examples/` (the README's commands run from the clone's root), with DIR
  first on PATH. Standard input is /dev/null.
- A command ending in `&` runs in the background, and the README must stop
  it itself (`kill $pid`): a background job still running 10 s after the
  last command is a failure naming the line that started it (and is then
  stopped by its PID). A command still running after --timeout seconds is
  a failure naming its line; its process group (the one bash this script
  started) is then stopped.

Prints `README.md:LINE: problem` for a failure and exits 1. Standard
library only.
"""

import argparse
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_LANGS = {"sh", "bash", "shell", "zsh"}
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([^\s`]*)")
EXITS = re.compile(r"#\s*exits\s+(\d+)\b")
UNTESTED = re.compile(r"#\s*untested:\s*(\S.*)$")
# How long background jobs get to exit after the last command (a farm or a
# server the README has just killed is still tearing down).
BACKGROUND_GRACE = 10.0


class Command:
    """One `$ ` command: where it is, its text, and what the README expects."""

    def __init__(self, line, text):
        self.line = line
        self.text = text
        m = UNTESTED.search(text)
        self.untested = m.group(1).strip() if m else None
        m = EXITS.search(text)
        self.exits = int(m.group(1)) if m else 0
        self.background = re.sub(r"\s#.*$", "", text).rstrip().endswith("&")


def extract(text, name="README.md"):
    """The README's commands, and the convention's errors as strings."""
    commands, errors = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1
        if lang in SHELL_LANGS:
            errors.append(
                f"{name}:{start}: a ```{lang} block: write shell sessions as ```console "
                "blocks with `$ ` before each command, so that scripts/check-readme.py runs them"
            )
            continue
        if lang != "console":
            for n, line in body:
                if line.startswith("$ "):
                    errors.append(
                        f"{name}:{n}: a `$ ` command in a ```{lang or '(untagged)'} block: "
                        "use a ```console block, so that scripts/check-readme.py runs it"
                    )
            continue
        k = 0
        while k < len(body):
            n, line = body[k]
            k += 1
            if not line.startswith("$ "):
                continue
            cmd = line[2:]
            while cmd.endswith("\\") and k < len(body):
                cmd = cmd + "\n" + body[k][1]
                k += 1
            commands.append(Command(n, cmd))
    return commands, errors


def script_for(commands, fd, name):
    """The bash script that runs `commands`, reporting on file descriptor 3."""
    out = [
        f"exec 3>&{fd} {fd}>&-",
        "__last_bg=",
        # Stops the background jobs still running, by PID; with `report`,
        # first gives them time to end and names them on fd 3.
        "__finish() {",
        '  if [ "$1" = report ]; then',
        f"    for __i in $(seq {int(BACKGROUND_GRACE * 10)}); do "
        '[ -z "$(jobs -pr)" ] && break; sleep 0.1; done',
        '    printf \'left %s\\n\' "$(jobs -pr | tr "\\n" " ")" >&3',
        "  fi",
        '  __left=$(jobs -pr)',
        '  if [ -n "$__left" ]; then kill $__left; wait; fi',
        "}",
        "",
    ]
    for c in commands:
        if c.untested:
            continue
        shown = f"\n{name}:{c.line}: $ {c.text}"
        out.append(f"printf '%s\\n' {shlex.quote(shown)}")
        out.append(f"printf 'start {c.line}\\n' >&3")
        out.append("__t0=$EPOCHREALTIME")
        # Braces keep the command in this shell (cd, variables and $! carry
        # over); the newlines let a trailing comment end the line; 3>&- keeps
        # the report pipe out of the command (and of its background jobs).
        out.append("{")
        out.append(c.text)
        out.append("} 3>&-")
        out.append("__rc=$?")
        out.append(
            f'if [ -n "${{!:-}}" ] && [ "$!" != "$__last_bg" ]; then '
            f"__last_bg=$!; printf 'bg {c.line} %s\\n' \"$!\" >&3; fi"
        )
        # Said by bash itself, so that it comes right after the command's own
        # output.
        out.append(
            f"printf '{name}:{c.line}: exit %s after %s s\\n' \"$__rc\" "
            '"$(awk "BEGIN { printf \\"%.1f\\", $EPOCHREALTIME - $__t0 }")"'
        )
        out.append(f"printf 'end {c.line} %s\\n' \"$__rc\" >&3")
        out.append(f'[ "$__rc" -eq {c.exits} ] || {{ __finish quiet; exit 0; }}')
    out.append("printf 'commands done\\n' >&3")
    out.append("__finish report")
    return "\n".join(out) + "\n"


def run(commands, bindir, timeout, name="README.md", examples=None, log=sys.stdout):
    """Run the commands; returns the failures as `NAME:LINE: problem` strings."""
    by_line = {c.line: c for c in commands}
    for c in commands:
        if c.untested:
            shown = UNTESTED.sub("", c.text.splitlines()[0]).rstrip()
            print(f"{name}:{c.line}: untested: $ {shown}  ({c.untested})", file=log)
    work = tempfile.mkdtemp(prefix="pulse-readme-")
    try:
        if examples:
            shutil.copytree(examples, os.path.join(work, "examples"))
        env = dict(os.environ)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env.pop("CDPATH", None)
        r, w = os.pipe()
        path = os.path.join(work, ".readme-commands.sh")
        with open(path, "w") as f:
            f.write(script_for(commands, w, name))
        log.flush()
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", path],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(w,),
            start_new_session=True,
        )
        os.close(w)
        failures = watch(proc, r, by_line, timeout, name, log)
        os.close(r)
        return failures
    finally:
        shutil.rmtree(work, ignore_errors=True)


def watch(proc, r, by_line, timeout, name, log):
    """Follow bash's reports until it exits; the failures seen."""
    failures, buf = [], b""
    current, started, done = None, time.monotonic(), False
    background = {}
    while True:
        limit = timeout if current is not None else BACKGROUND_GRACE + 30
        left = started + limit - time.monotonic()
        ready, _, _ = select.select([r], [], [], max(left, 0))
        if not ready:
            what = f"$ {by_line[current].text}" if current is not None else "the background jobs"
            where = f"{name}:{current}" if current is not None else name
            failures.append(f"{where}: still running after {limit:.0f} s: {what}")
            stop_group(proc)
            return failures
        chunk = os.read(r, 4096)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            word, _, rest = line.decode().partition(" ")
            if word == "start":
                current, started = int(rest), time.monotonic()
            elif word == "bg":
                n, pid = rest.split()
                background[pid] = int(n)
            elif word == "end":
                n, rc = (int(x) for x in rest.split())
                c = by_line[n]
                if rc != c.exits:
                    failures.append(
                        f"{name}:{n}: exited {rc}, the README expects {c.exits}: $ {c.text}"
                    )
                current, started = None, time.monotonic()
            elif word == "commands":
                done = True
            elif word == "left":
                for pid in rest.split():
                    n = background.get(pid)
                    where = f"{name}:{n}" if n else name
                    failures.append(
                        f"{where}: a background job (pid {pid}) was still running after the "
                        "last command: the README must stop what it starts (e.g. `kill $pid`)"
                    )
    proc.wait()
    if not done and not failures:
        failures.append(f"{name}: bash stopped before the last command (exit {proc.returncode})")
    return failures


def stop_group(proc):
    """Stop the bash this script started, and everything in its group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def self_test():
    """The checker must fail where a reader would: each case is a small
    README, run through the same extract and run."""
    import io

    def check(text, timeout=20):
        commands, errors = extract(text, "T.md")
        if errors:
            return errors, ""
        log = io.StringIO()
        with tempfile.TemporaryFile("w+") as f:
            failures = run(commands, "/nonexistent", timeout, "T.md", log=f)
            f.seek(0)
            log.write(f.read())
        return failures, log.getvalue()

    cases = 0

    def expect(text, want, timeout=20):
        nonlocal cases
        cases += 1
        got, log = check(text, timeout)
        ok = len(got) == len(want) and all(g.startswith(w) for g, w in zip(got, want))
        if not ok:
            raise SystemExit(f"self-test case {cases}: want {want}, got {got}\n{log}")
        return log

    passing = "\n".join([
        "# T",  # 1
        "```console",  # 2
        "$ x=$(echo hi)   # state carries over",  # 3
        "output line, not a command",  # 4
        '$ [ "$x" = hi ]',  # 5
        "$ false   # exits 1",  # 6
        "$ sleep 30 &",  # 7
        "$ s=$!",  # 8
        "$ kill $s",  # 9
        "$ echo one \\",  # 10
        "two | grep -q 'one two'",  # 11
        "$ exit 3   # untested: would end the session",  # 12
        "```",  # 13
    ])
    log = expect(passing, [])
    if "T.md:12: untested:" not in log or "(would end the session)" not in log:
        raise SystemExit(f"self-test: the untested command's reason was not printed:\n{log}")
    expect("a\n```console\n$ true\n$ test -e nothing-here\n$ true\n```\n", ["T.md:4: exited 1, the README expects 0"])
    expect("```console\n$ true   # exits 2\n```\n", ["T.md:2: exited 0, the README expects 2"])
    expect("x\n\n```sh\npulse scan\n```\n", ["T.md:3: a ```sh block"])
    expect("```\n$ pulse scan\n```\n", ["T.md:2: a `$ ` command in a ```(untagged) block"])
    expect("```console\n$ sleep 60 &\n$ true\n```\n", ["T.md:2: a background job"])
    expect("```console\n$ true\n$ sleep 60\n```\n", ["T.md:3: still running after 1 s"], timeout=1)
    print(f"scripts/check-readme.py --self-test: {cases} cases passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="print each command and what the check does with it")
    mode.add_argument("--run", action="store_true", help="run the commands (needs --bin)")
    mode.add_argument("--self-test", action="store_true", help="check the checker on small READMEs")
    ap.add_argument("--bin", help="directory holding the pulse to test; put first on PATH")
    ap.add_argument("--timeout", type=float, default=180, help="seconds one command may run (default 180)")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    name = os.path.basename(args.readme)
    with open(args.readme, encoding="utf-8") as f:
        commands, errors = extract(f.read(), name)
    for e in errors:
        print(e)
    if args.list:
        for c in commands:
            what = f"untested: {c.untested}" if c.untested else f"exits {c.exits}" + (", background" if c.background else "")
            print(f"{name}:{c.line}: [{what}] $ {c.text}")
        return 1 if errors else 0
    if errors:
        return 1
    if not args.bin:
        ap.error("--run needs --bin DIR (the directory holding the pulse to test)")
    bindir = os.path.abspath(args.bin)
    found = shutil.which("pulse", path=bindir + os.pathsep + os.environ.get("PATH", ""))
    if found != os.path.join(bindir, "pulse"):
        print(f"{name}: no pulse in {bindir} (found {found}): install it there first")
        return 1
    start = time.monotonic()
    failures = run(commands, bindir, args.timeout, name, examples=os.path.join(ROOT, "examples"))
    for f in failures:
        print(f)
    ran = sum(1 for c in commands if not c.untested)
    untested = len(commands) - ran
    if failures:
        print(f"scripts/check-readme.py: {len(failures)} failure(s)")
        return 1
    print(
        f"scripts/check-readme.py: {ran} commands of {name} ran as written in "
        f"{time.monotonic() - start:.0f} s; {untested} untested, each with its reason above"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
