#!/usr/bin/env python3
"""The disk's floor under a durable ack: how long one commit's flush takes here.

Our server acks a message after its SQLite transaction is on disk: the WAL frames the
commit appends (one 4 KiB page plus a 24-byte header per dirty page; a DM dirties about
eight), then an fdatasync. This appends the same bytes and flushes them, commit after
commit, in a file beside where run.sh puts the server's database (a fresh temporary
directory), and prints the flush times as one JSON line. No server, no chat code: what
is left of a delivery's latency once this is taken out is ours.

Usage: bench/fsync-floor.py [COMMITS=2000] [PAGES_PER_COMMIT=8] [DIR=$TMPDIR]
"""
import json
import os
import sys
import tempfile
import time


def percentile(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p / 100))]


def main():
    commits = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    where = sys.argv[3] if len(sys.argv) > 3 else None
    frame = os.urandom(4096 + 24)
    with tempfile.TemporaryDirectory(dir=where) as scratch:
        fd = os.open(os.path.join(scratch, "wal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            flush_ms = []
            for _ in range(commits):
                os.write(fd, frame * pages)
                started = time.perf_counter()
                os.fdatasync(fd)
                flush_ms.append((time.perf_counter() - started) * 1000)
        finally:
            os.close(fd)
    flush_ms.sort()
    print(json.dumps({
        "commits": commits,
        "bytes_per_commit": len(frame) * pages,
        "flush_ms": {p: round(percentile(flush_ms, q), 3) for p, q in (("p50", 50), ("p95", 95), ("p99", 99), ("p999", 99.9))}
        | {"max": round(flush_ms[-1], 3)},
    }))


if __name__ == "__main__":
    main()
