"""The cost of the event stream and of per-message statistics, per event.

A ConnManCore (no sockets, no clock) with one handshaken inbound v1 peer is fed
``--messages`` pings, each answered with a pong; the time per ping is measured in five
set-ups, each as a ratio to the first, run in the same process:

1. nobody listens (``on_event`` is None: no event is built; NetStats counting only);
2. a subscriber to ``*`` (connection events only: per-message ones are off);
3. a subscriber to ``net:inbound_message,net:outbound_message`` (two events per ping),
   drained as it goes;
4. as 3, plus ``-eventlog`` writing every event to a file (JSON lines, rotated);
5. as 3 with ten subscribers.

The per-event cost is (time of set-up N - time of set-up 1) / events per ping.
Also: ``EventHub.publish`` alone and ``NetStats.message`` alone, per call.

Run: ``python3 bench/events.py [--messages 20000]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.connman import ConnManCore, ConnManOptions
from peerkeeper.bitcoin.netstats import NetStats
from peerkeeper.bitcoin.peer import PeerConfig
from peerkeeper.net.chains import CHAINS
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.shell.events import EventHub, EventLog
from peerkeeper.wire.events import Event, EventFilter
from peerkeeper.wire.messages import Ping, Verack, Version
from peerkeeper.wire.v1 import V1Transport

REGTEST = CHAINS["regtest"]
T0 = 1_700_000_000.0


def make_core() -> tuple[ConnManCore, V1Transport]:
    core = ConnManCore(
        ConnManOptions(chain=REGTEST, listen=False, v2transport=False, peer=PeerConfig()),
        AddrMan(random.Random(1), deterministic=True),
        rng=random.Random(2),
        transport_rng=random.Random(3).randbytes,
    )
    core.start(T0)
    me = Service(NetAddr.parse("127.0.0.1"), 18444)
    them = Service(NetAddr.parse("11.1.0.1"), 50000)
    assert core.accepted(1, me, them, T0)
    t = V1Transport(REGTEST.magic)
    t.send_message(Version(version=70016, timestamp=int(T0), nonce=99, user_agent="/b/"))
    t.send_message(Verack())
    core.received(1, t.data_to_send(), T0)
    core.poll_actions()
    return core, t


def run(messages: int, setup: str, tmp: Path) -> float:
    core, t = make_core()
    hub = EventHub()
    subs = []
    if setup != "none":
        spec = "*" if setup == "star" else "net:inbound_message,net:outbound_message"
        for _ in range(10 if setup == "ten" else 1):
            subs.append(hub.subscribe(spec, maxlen=10**9))
        core.on_event = hub.publish
        core.message_events = hub.wants_messages
    elog = None
    if setup == "eventlog":
        elog = EventLog(
            tmp / "events.jsonl", EventFilter("net:inbound_message,net:outbound_message")
        )
        hub.add_sink(elog.filter, elog)
    pings = []
    for i in range(messages):
        t.send_message(Ping(i + 1))
        pings.append(t.data_to_send())
    start = time.perf_counter()
    for data in pings:
        core.received(1, data, T0 + 1)
        core.poll_actions()
        for s in subs:
            s.queue.clear()  # a reader that keeps up
    elapsed = time.perf_counter() - start
    if elog is not None:
        elog.close()
    return elapsed / messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run(2000, "none", tmp)  # warm up
        results = {
            s: min(run(args.messages, s, tmp) for _ in range(3))
            for s in ("none", "star", "messages", "eventlog", "ten")
        }
    base = results["none"]
    rows = {
        s: {
            "us_per_ping": round(v * 1e6, 2),
            "ratio": round(v / base, 3),
            "us_per_event": round((v - base) * 1e6 / 2, 2) if s != "star" else None,
        }
        for s, v in results.items()
    }
    hub = EventHub()
    sub = hub.subscribe("*", maxlen=10**9)
    ev = Event("net:inbound_connection", T0, {"id": 1})
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        hub.publish(ev)
    publish = (time.perf_counter() - start) / n
    sub.queue.clear()
    stats = NetStats()
    start = time.perf_counter()
    for _ in range(n):
        stats.message("sent", "ipv4", "inbound", "ping", 32)
    netstats = (time.perf_counter() - start) / n
    print(
        json.dumps(
            {
                "per_ping": rows,
                "publish_us": round(publish * 1e6, 3),
                "netstats_message_us": round(netstats * 1e6, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
