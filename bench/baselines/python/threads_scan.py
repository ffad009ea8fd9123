"""pulse's scan as a Python threads programmer would write it: a pool of
worker threads over a bounded queue.Queue, standard library only
(bench/baselines/README.md).

    python3 threads_scan.py --targets FILE [--workers 50] [--timeout 5s] [--grace 2s]

Bounded fan-out: `--workers` threads take targets from a queue.Queue bounded
to one item per worker, filled by the main thread. Each probe's deadline
is fixed at its start, and every blocking socket call is given what is
left of it (`settimeout`), so a server that drips bytes cannot extend it.
SIGINT/SIGTERM: the main thread stops filling the queue and reports the
targets never started as `cancelled`; a blocked thread cannot be told
anything, so at the end of the grace period the main thread shuts down
every socket still in flight (pulse's threads model does the same), which
makes each blocked call return, and those probes are `cancelled`. Results
go to the main thread over a second queue. Exit codes: 0 all up, 1 some
down, 2 bad input, 130 interrupted.
"""

import argparse
import queue
import signal
import socket
import sys
import threading
import time

import targets as T

CUT = ("cancelled", "scan interrupted: probe still running when the grace period ended")


class Deadline:
    """One probe's absolute deadline, and the sockets the watchdog may cut."""

    def __init__(self, limit, registry):
        self.at, self.registry = time.monotonic() + limit, registry

    def left(self):
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


def connect(host, port, deadline):
    """Connect to the first address of `host` that accepts. Each socket is
    registered before its connect, so the watchdog can cut a hung one."""
    last = None
    for family, kind, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        deadline.registry.add(sock)
        try:
            sock.settimeout(deadline.left())
            sock.connect(addr)
            return sock
        except ConnectionRefusedError as e:
            last = e
            deadline.registry.discard(sock)
            sock.close()
        except BaseException:
            deadline.registry.discard(sock)
            sock.close()
            raise
    raise last or OSError(f"{host}: no addresses")


def exchange(t, deadline):
    if t.kind == "tcp":
        host, _, port = t.addr.rpartition(":")
        sock = connect(host.strip("[]"), int(port), deadline)
        deadline.registry.discard(sock)
        sock.close()
        return None
    url, hops = t.url, 0
    while True:
        host, port, tls, head = T.request(url)
        sock = connect(host, port, deadline)
        try:
            if tls:
                deadline.registry.discard(sock)
                sock.settimeout(deadline.left())
                sock = T.tls_context(t).wrap_socket(sock, server_hostname=host)
                deadline.registry.add(sock)
            sock.settimeout(deadline.left())
            sock.sendall(head)
            resp = T.Response(keep_body=t.contains is not None or t.matches is not None)
            while not resp.done:
                sock.settimeout(deadline.left())
                data = sock.recv(64 * 1024)
                if not data:
                    resp.eof()
                    break
                resp.feed(data)
        finally:
            deadline.registry.discard(sock)
            sock.close()
        nxt = T.redirect(t, resp, url, hops)
        if nxt is None:
            T.check(t, resp)
            return resp.status
        url, hops = nxt, hops + 1


class Registry:
    """The sockets in flight, so the grace period's end can reach them."""

    def __init__(self):
        self.lock, self.socks, self.cut = threading.Lock(), set(), False

    def add(self, s):
        with self.lock:
            if self.cut:
                s.close()
                raise ConnectionAbortedError("scan interrupted")
            self.socks.add(s)

    def discard(self, s):
        with self.lock:
            self.socks.discard(s)

    def shut_all(self):
        with self.lock:
            self.cut = True
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def probe(t, default_timeout, registry):
    started = time.monotonic()
    if t.kind == "icmp":
        return T.line(t, started, error=T.UNSUPPORTED)
    limit = t.timeout or default_timeout
    try:
        status = exchange(t, Deadline(limit, registry))
        return T.line(t, started, status)
    except Exception as e:  # every failure is this probe's result
        if registry.cut:  # whatever the call said, the watchdog did it
            return T.line(t, started, error=CUT)
        if isinstance(e, (TimeoutError, socket.timeout)):
            return T.line(t, started, error=("timeout", f"timed out after {limit:g}s"))
        return T.line(t, started, error=T.classify(e))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", required=True)
    p.add_argument("--workers", type=int, default=50)
    p.add_argument("--timeout", type=T.parse_duration, default=5.0)
    p.add_argument("--grace", type=lambda s: 0.0 if s in ("0", "0s") else T.parse_duration(s), default=2.0)
    args = p.parse_args()
    if args.workers < 1:
        p.error("--workers must be at least 1")
    targets = T.read_targets(args.targets)

    stop = threading.Event()
    registry = Registry()
    jobs = queue.Queue(maxsize=args.workers)
    results = queue.Queue(maxsize=args.workers)

    def on_signal(_sig, _frame):
        if not stop.is_set():
            stop.set()
            threading.Timer(args.grace, registry.shut_all).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def worker():
        while (t := jobs.get()) is not None:
            if stop.is_set():  # queued before the signal, not started
                results.put(T.line(t, time.monotonic(), error=T.NOT_STARTED))
                continue
            results.put(probe(t, args.timeout, registry))
        results.put(None)

    n = min(args.workers, len(targets)) or 1
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for th in threads:
        th.start()

    down = 0

    def emit(text):
        nonlocal down
        down += '"success": false' in text
        sys.stdout.write(text + "\n")

    def drain():
        """Write what results have come, without waiting."""
        while True:
            try:
                r = results.get_nowait()
            except queue.Empty:
                return
            if r is None:
                finished.append(1)
            else:
                emit(r)

    finished = []
    for t in targets:
        while not stop.is_set():
            try:
                jobs.put(t, timeout=0.05)
                break
            except queue.Full:
                drain()
        else:
            emit(T.line(t, time.monotonic(), error=T.NOT_STARTED))
        drain()
    for _ in threads:
        while True:
            try:
                jobs.put(None, timeout=0.05)
                break
            except queue.Full:
                drain()
    while len(finished) < n:
        r = results.get()
        if r is None:
            finished.append(1)
        else:
            emit(r)
    sys.stdout.flush()
    sys.exit(130 if stop.is_set() else (1 if down else 0))


if __name__ == "__main__":
    main()
