"""pulse's scan as a Python asyncio programmer would write it, standard
library only (bench/baselines/README.md).

    python3 asyncio_scan.py --targets FILE [--workers 50] [--timeout 5s] [--grace 2s]

Bounded fan-out: `--workers` worker tasks take targets from an
asyncio.Queue that a producer fills (bounded to one item per worker, so it
never runs ahead). Each probe runs under `asyncio.timeout()` set once at
its start: an absolute deadline, which no read extends. SIGINT/SIGTERM:
the producer stops and reports the targets never started as `cancelled`;
in-flight probes get until the grace period ends, then their tasks are
cancelled (`cancelled`). Results are written by the one event loop thread
as they complete. Exit codes: 0 all up, 1 some down, 2 bad input,
130 interrupted.
"""

import argparse
import asyncio
import signal
import sys
import time

import targets as T


async def exchange(t):
    """One probe's work: a TCP connect, or GETs until a response that is not
    a redirect to follow. Returns the final status (None for TCP)."""
    if t.kind == "tcp":
        host, _, port = t.addr.rpartition(":")
        _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.close()
        return None
    url, hops = t.url, 0
    while True:
        host, port, tls, head = T.request(url)
        ssl_ctx = T.tls_context(t) if tls else None
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl_ctx, server_hostname=host if tls else None
        )
        try:
            writer.write(head)
            await writer.drain()
            resp = T.Response(keep_body=t.contains is not None or t.matches is not None)
            while not resp.done:
                data = await reader.read(64 * 1024)
                if not data:
                    resp.eof()
                    break
                resp.feed(data)
        finally:
            writer.close()
        nxt = T.redirect(t, resp, url, hops)
        if nxt is None:
            T.check(t, resp)
            return resp.status
        url, hops = nxt, hops + 1


async def probe(t, default_timeout):
    started = time.monotonic()
    if t.kind == "icmp":
        return T.line(t, started, error=T.UNSUPPORTED)
    limit = t.timeout or default_timeout
    try:
        async with asyncio.timeout(limit):
            status = await exchange(t)
        return T.line(t, started, status)
    except TimeoutError:
        return T.line(t, started, error=("timeout", f"timed out after {limit:g}s"))
    except asyncio.CancelledError:
        raise
    except Exception as e:  # every failure is this probe's result
        return T.line(t, started, error=T.classify(e))


async def scan(args):
    targets = T.read_targets(args.targets)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    queue = asyncio.Queue(maxsize=args.workers)
    in_flight = set()
    down = 0

    def emit(text):
        nonlocal down
        down += '"success": false' in text
        sys.stdout.write(text + "\n")

    async def worker():
        while (t := await queue.get()) is not None:
            if stop.is_set():  # queued before the signal, not started
                emit(T.line(t, time.monotonic(), error=T.NOT_STARTED))
                continue
            task = asyncio.create_task(probe(t, args.timeout))
            in_flight.add(task)
            try:
                emit(await task)
            except asyncio.CancelledError:
                emit(T.line(t, time.monotonic(), error=(
                    "cancelled", "scan interrupted: probe still running when the grace period ended")))
            finally:
                in_flight.discard(task)

    async def cut_after_grace():
        await stop.wait()
        await asyncio.sleep(args.grace)
        for task in list(in_flight):
            task.cancel()

    workers = [asyncio.create_task(worker()) for _ in range(min(args.workers, len(targets)) or 1)]
    cutter = asyncio.create_task(cut_after_grace())
    for t in targets:
        if stop.is_set():
            emit(T.line(t, time.monotonic(), error=T.NOT_STARTED))
            continue
        put = asyncio.create_task(queue.put(t))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({put, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not put.done():
            put.cancel()
            emit(T.line(t, time.monotonic(), error=T.NOT_STARTED))
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)
    cutter.cancel()
    sys.stdout.flush()
    return 130 if stop.is_set() else (1 if down else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", required=True)
    p.add_argument("--workers", type=int, default=50)
    p.add_argument("--timeout", type=T.parse_duration, default=5.0)
    p.add_argument("--grace", type=lambda s: 0.0 if s in ("0", "0s") else T.parse_duration(s), default=2.0)
    args = p.parse_args()
    if args.workers < 1:
        p.error("--workers must be at least 1")
    sys.exit(asyncio.run(scan(args)))


if __name__ == "__main__":
    main()
