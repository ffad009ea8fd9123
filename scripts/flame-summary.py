#!/usr/bin/env python3
"""Where each model spent its CPU, from folded stacks.

    scripts/flame-summary.py DIR MODEL... --binary PULSE --out README.md [--meta KEY=VALUE]...

Reads DIR/MODEL.folded (inferno-collapse-perf --all output: one line per
distinct stack, `thread;frame;...;leaf WEIGHT`, kernel frames ending in
`_[k]`; with perf's cpu-clock event the weight is nanoseconds of CPU) for
each MODEL and writes the --out file: the CPU sampled and its share per area
for every model, its top functions by self time, and the KEY=VALUE
arguments (command, versions, machine) as the run's record.
scripts/profile.sh calls it; nothing in the README is written by hand.

A sample belongs to one area, decided by its leaf-most frame that can be
placed (frames perf could not name, `[unknown]`, are skipped). Rust frames
are placed by the crate their path starts with. A frame with no path is C:
if the pulse binary (--binary) defines it, it is ring's C or assembly
(`ring_core_0_17_14__sha512_block_data_order`, `__ecp_nistz256_mul_montx`,
`_aesni_ctr32_ghash_6x`: ring is the only C in the build, apart from the
start-up and compiler-builtins functions listed in NOT_RING); otherwise it
comes from the C library (malloc, memcpy, __libc_send, start_thread). The
areas:

- kernel: a kernel frame (`_[k]`): the sample was in a system call or an
  interrupt, whatever user code asked for it;
- runtime: the executor and its reactor (tokio, mio, async-io, polling,
  async-executor, async-task, async-std, smol, futures-lite, event-listener,
  blocking, parking, crossbeam, rayon) and the model crates that drive the
  core on it (pulse_tokio, pulse_smol, ...);
- probe core: pulse_core (the sans-IO session, target checks, results) and
  what it parses with (ureq-proto, httparse, http, regex, memchr);
- TLS: rustls, ring (Rust, C and assembly), webpki, x509-parser and the
  DER crates under it;
- std/alloc/libc: Rust's std, core and alloc, and C library functions
  (malloc, free, memcpy, pthread, ...);
- other: the rest (pulse's own command code, serde_json writing the
  results, ...).

Generic frames are placed by their own path, not their type arguments: in
`tokio::runtime::task::harness::poll<pulse_tokio::...>` the frame is
tokio's; in `<rustls::conn::Connection as std::io::Read>::read` it is
rustls's (the self type, not the trait).
"""

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

AREAS = ["kernel", "runtime", "probe core", "TLS", "std/alloc/libc", "other"]

CRATES = {
    "runtime": [
        "tokio", "mio", "async_io", "async_executor", "async_task", "async_std",
        "async_global_executor", "async_lock", "async_channel", "smol", "polling",
        "futures_lite", "futures_util", "futures_core", "futures_channel",
        "event_listener", "event_listener_strategy", "blocking", "parking",
        "crossbeam_channel", "crossbeam_deque", "crossbeam_epoch", "crossbeam_utils",
        "crossbeam_queue", "rayon", "rayon_core", "concurrent_queue", "pulse_tokio",
        "pulse_smol", "pulse_async_std", "pulse_threads", "pulse_rayon", "pulse_net",
        "signal_hook", "signal_hook_registry",
    ],
    "probe core": ["pulse_core", "ureq_proto", "httparse", "http", "regex",
                   "regex_automata", "regex_syntax", "memchr", "socket2"],
    "TLS": ["rustls", "ring", "webpki", "rustls_webpki", "x509_parser", "der_parser",
            "asn1_rs", "untrusted", "rustls_pki_types", "webpki_roots"],
    "std/alloc/libc": ["std", "core", "alloc", "libc", "hashbrown"],
}
CRATE_AREA = {c: area for area, crates in CRATES.items() for c in crates}

# C symbols of the pulse binary that are not ring's: the C start-up code,
# rustc's entry point and personality, and compiler-builtins' arithmetic.
NOT_RING = {
    "main", "_start", "_init", "_fini", "frame_dummy", "register_tm_clones",
    "deregister_tm_clones", "__do_global_dtors_aux", "rust_eh_personality",
    "ceil", "floor", "trunc", "truncf", "round", "roundf", "fma", "fmaf",
}
COMPILER_BUILTIN = re.compile(r"^__(u?(div|mod)[st]i3|float|fix|pow|mul[sdt]i|ashl|lshr|ashr)")


def ring_symbols(binary: str) -> set:
    """The C and assembly functions defined in `binary` that are ring's."""
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            name = parts[2]
            # Rust symbols are mangled (legacy _ZN..., v0 _R...).
            if name.startswith(("_ZN", "_R")) or name in NOT_RING or COMPILER_BUILTIN.match(name):
                continue
            names.add(name)
    return names


RING = set()


def head(frame: str) -> str:
    """The frame's own path, without type arguments: `a::b<T>::c` -> `a::b`,
    `<a::B<T> as c::D>::e` -> `a::B`."""
    f = frame
    if f.startswith("<"):
        depth, out = 0, []
        for ch in f[1:]:
            if ch == "<":
                depth += 1
            elif ch == ">":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0:
                out.append(ch)
        f = "".join(out).split(" as ", 1)[0]
    f = f.split("<", 1)[0]
    # `&mut rustls::...`, `dyn core::...`
    for prefix in ("&mut ", "&", "*const ", "*mut ", "dyn "):
        if f.startswith(prefix):
            f = f[len(prefix):]
    return f.strip()


def area_of(frame: str):
    """The frame's area, or None when it cannot be placed."""
    if frame.endswith("_[k]"):
        return "kernel"
    if frame in ("[unknown]", "") or frame.startswith("0x"):
        return None
    h = head(frame)
    if "::" in h:
        crate = h.split("::", 1)[0]
        return CRATE_AREA.get(crate, "other")
    if h in RING:
        return "TLS"
    # No path: a C function (malloc, memcpy, __libc_send, start_thread),
    # with `perf script --no-inline`, where every Rust frame is a full symbol.
    return "std/alloc/libc"


def read_folded(path: Path):
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


# The kernel's entry point of a system call: `__x64_sys_connect_[k]`.
SYSCALL = re.compile(r"^__(?:x64|ia32|se)_sys_(\w+)_\[k\]$")


def summarise(stacks):
    """Total weight, and weight by area, leaf frame, system call and thread."""
    areas, leaves, syscalls, threads, total = Counter(), Counter(), Counter(), Counter(), 0
    for frames, n in stacks:
        total += n
        # frames[0] is the thread's name; the leaf is last.
        place = next((a for a in map(area_of, reversed(frames[1:])) if a), "other")
        areas[place] += n
        leaves[frames[-1]] += n
        threads[frames[0]] += n
        call = next((m.group(1) for m in map(SYSCALL.match, frames) if m), None)
        if call:
            syscalls[call] += n
    return total, areas, leaves, syscalls, threads


def pct(n, total):
    return f"{100 * n / total:.1f}%" if total else "-"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("dir", type=Path)
    p.add_argument("models", nargs="+")
    p.add_argument("--binary", required=True, help="the pulse binary that was profiled")
    p.add_argument("--out", type=Path, required=True, help="the summary to write")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    RING.update(ring_symbols(a.binary))
    meta = [m.split("=", 1) for m in a.meta]
    out_dir, models = a.dir, a.models
    rows, tops, calls, pools = [], [], [], []
    for m in models:
        total, areas, leaves, syscalls, threads = summarise(read_folded(out_dir / f"{m}.folded"))
        if total == 0:
            sys.exit(f"flame-summary: {m}.folded has no samples")
        rows.append(f"| [{m}]({m}.svg) | {total / 1e9:.2f} s | "
                    + " | ".join(pct(areas[a], total) for a in AREAS) + " |")
        top = "; ".join(f"`{head(f)[:70]}` {pct(n, total)}" for f, n in leaves.most_common(5))
        tops.append(f"- **{m}**: {top}")
        in_calls = sum(syscalls.values())
        top = "; ".join(f"`{c}` {pct(n, total)}" for c, n in syscalls.most_common(6))
        calls.append(f"- **{m}** ({pct(in_calls, total)} under a system call): {top}")
        top = "; ".join(f"`{t}` {pct(n, total)}" for t, n in threads.most_common(4))
        pools.append(f"- **{m}**: {top}")
    lines = [
        "# Flamegraphs: where each model spends its CPU",
        "",
        "Generated by `scripts/profile.sh` (read it for the exact steps) from one",
        "`perf record` of one `pulse scan` per model against the mock farm on",
        "loopback; every figure below is computed from the folded stacks",
        "(`FOLDED=DIR scripts/profile.sh` keeps them) by `scripts/flame-summary.py`. How to read",
        "them: [docs/runbooks/profiling.md](../../docs/runbooks/profiling.md).",
        "",
        "## The run",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in meta]
    lines += [
        "",
        "## Share of samples by area",
        "",
        "*CPU sampled* is the scan's on-CPU time as perf sampled it (every thread,",
        "user and kernel). Each sample is placed by its leaf-most frame that can be",
        "placed (`scripts/flame-summary.py` lists the crates in each area): *kernel*",
        "is time in system calls and interrupts, the other columns are user time;",
        "*runtime* includes the model's own crate (pulse_tokio, ...).",
        "",
        "| model | CPU sampled | " + " | ".join(AREAS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in AREAS) + " |",
        *rows,
        "",
        "## Top functions by self time",
        "",
        "The five leaf frames with the most samples, as a share of the model's CPU",
        "sampled (kernel frames end in `_[k]`; generic arguments left out).",
        "",
        *tops,
        "",
        "## Kernel time by system call",
        "",
        "Samples under each system call's kernel entry (`__x64_sys_NAME`), as a",
        "share of the model's CPU sampled; the rest of *kernel* is interrupts,",
        "soft interrupts and scheduling outside any call of this process.",
        "",
        *calls,
        "",
        "## By thread",
        "",
        "The thread a sample was taken on, by name (numbered threads of one pool",
        "counted together: `pulse-rayon-17` is `pulse-rayon`; Linux keeps 15",
        "characters of a name). `pulse` is the main thread, and any thread not",
        "given a name of its own.",
        "",
        *pools,
        "",
    ]
    a.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
