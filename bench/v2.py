"""BIP324 v2 transport throughput against v1, in the same run.

Rows (sans-IO transports in memory):

* 1 MB messages: send (encrypt / frame) and receive (decrypt / verify) MB/s;
* 100-byte messages: messages/s each way;
* handshakes/s: two v2 transports completing the key exchange and version packet.

Between two processes over loopback, through the whole node: ``bench/throughput.py``.

The ratio column is v2 / v1. Run: ``python3 bench/v2.py`` (about half a minute).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from peerkeeper.wire.messages import Ping, UnknownMessage
from peerkeeper.wire.transport import Transport
from peerkeeper.wire.v1 import V1Transport
from peerkeeper.wire.v2 import V2Transport

MAGIC = bytes.fromhex("f9beb4d9")


def pair(v2: bool) -> tuple[Transport, Transport]:
    """A connected (initiator, responder) pair with the handshake done."""
    if not v2:
        return V1Transport(MAGIC), V1Transport(MAGIC)
    a = V2Transport(MAGIC, initiating=True, rng=os.urandom)
    b = V2Transport(MAGIC, initiating=False, rng=os.urandom)
    a.send_message(Ping(1))
    for _ in range(4):
        b.receive_data(a.data_to_send())
        while b.next_message() is not None:
            pass
        a.receive_data(b.data_to_send())
        while a.next_message() is not None:
            pass
    assert a.transport_type == b.transport_type == "v2"
    return a, b


def wire(t: Transport, msg: UnknownMessage | Ping) -> bytes:
    t.send_message(msg)
    return t.data_to_send()


def rate(fn: Callable[[], int], min_time: float = 0.3) -> tuple[float, float]:
    n = moved = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time or n == 0:
        moved += fn()
        n += 1
    return n / elapsed, moved / elapsed / 1e6


def sans_io_rows(v2: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    big = UnknownMessage("block", os.urandom(1_000_000))
    small = UnknownMessage("tx", os.urandom(100))
    for label, msg in (("1MB", big), ("100B", small)):
        a, b = pair(v2)
        sample = wire(a, msg)
        b.receive_data(sample)
        assert b.next_message() is not None

        def send(t: Transport = a, m: UnknownMessage = msg) -> int:
            wire(t, m)
            return len(m.payload)

        out[f"{label} send msg/s"], out[f"{label} send MB/s"] = rate(send)
        # Receive: feed pre-encrypted packets (v2 packets must be decrypted in order).
        a, b = pair(v2)
        packets = [wire(a, msg) for _ in range(300 if label == "1MB" else 20000)]
        it = iter(packets)

        def recv(t: Transport = b, m: UnknownMessage = msg, feed: object = it) -> int:
            t.receive_data(next(feed))  # type: ignore[call-overload]
            raw = t.next_message()
            assert raw is not None and raw.rejected is None
            return len(m.payload)

        start = time.perf_counter()
        n = 0
        while n < len(packets) and (time.perf_counter() - start < 0.3 or n < 5):
            recv()
            n += 1
        elapsed = time.perf_counter() - start
        out[f"{label} recv msg/s"] = n / elapsed
        out[f"{label} recv MB/s"] = n * len(msg.payload) / elapsed / 1e6
    if v2:
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < 0.5:
            pair(True)
            n += 1
        out["handshakes/s"] = n / (time.perf_counter() - start)
    return out


def main() -> None:
    v1 = sans_io_rows(False)
    v2 = sans_io_rows(True)
    print("| measure | v1 | v2 | v2 / v1 |")
    print("|---|---:|---:|---:|")
    for key in v2:
        if key in v1:
            print(f"| {key} | {v1[key]:,.0f} | {v2[key]:,.0f} | {v2[key] / v1[key]:.2f} |")
        else:
            print(f"| {key} | n/a | {v2[key]:,.0f} | n/a |")


if __name__ == "__main__":
    main()
