"""Small messages: v1 frames parsed and checksummed per second, against the hashing bound.

A v1 frame's checksum is the first 4 bytes of sha256d(payload), so no parser can take
small frames faster than one core computes two SHA-256 of each payload: that is the
bound, measured here in the same run (``hashlib.sha256`` twice per payload, nothing
else). The measured row feeds a buffer of N framed ``ping``-sized and 100-byte
messages to :class:`~peerkeeper.wire.v1.V1Transport` in 64 KiB reads and takes every
message out (header checks, checksum, command lookup), as a node's receive path does.

Issue 17's aim: at least 70 % of the bound.

Run: ``python3 bench/frames.py [--count 200000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time

from peerkeeper.wire.v1 import V1Transport, frame_v1

MAGIC = bytes.fromhex("fabfb5da")


def hashing_bound(payloads: list[bytes]) -> float:
    """sha256d of every payload: payloads per second."""
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for p in payloads:
        sha(sha(p).digest()).digest()
    return len(payloads) / (time.perf_counter() - t0)


def parse_rate(stream: bytes, count: int) -> float:
    """Frames taken out of ``stream`` (``count`` of them) per second."""
    t = V1Transport(MAGIC)
    got = 0
    t0 = time.perf_counter()
    for i in range(0, len(stream), 65536):
        t.receive_data(stream[i : i + 65536])
        while t.next_message() is not None:
            got += 1
    dt = time.perf_counter() - t0
    assert got == count, (got, count)
    return count / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200_000)
    args = ap.parse_args()
    print("| payload | frames/s parsed | sha256d bound/s | fraction |")
    print("|---:|---:|---:|---:|")
    for size in (8, 100, 1000):
        payloads = [
            i.to_bytes(8, "little") * (size // 8) + bytes(size % 8) for i in range(args.count)
        ]
        stream = b"".join(frame_v1(MAGIC, "ping", p) for p in payloads)
        bound = max(hashing_bound(payloads) for _ in range(3))
        rate = max(parse_rate(stream, args.count) for _ in range(3))
        print(f"| {size} B | {rate:,.0f} | {bound:,.0f} | {rate / bound:.0%} |")


if __name__ == "__main__":
    main()
