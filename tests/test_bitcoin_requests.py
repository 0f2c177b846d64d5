"""Bitcoin requests matched by the dispatch layer's table: ping nonce -> pong, getaddr -> addr."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support import port_of, raw_handshake, running, wait_until

from peerkeeper.net.netaddr import Service
from peerkeeper.shell.dispatch import RequestFailed
from peerkeeper.wire.messages import Addr, AddrEntry, GetAddr, Ping, Pong

pytestmark = pytest.mark.timeout(60)


async def test_pong_and_addr_matched_by_peer_type_and_content(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False) as a:
        raw = await raw_handshake(port_of(a))
        await wait_until(
            lambda: any(p.proto.successfully_connected for p in a.connman.peers.values())
        )
        peer_id = next(iter(a.connman.peers))
        cm = a.connman

        async def answer() -> None:
            while True:
                msg = await raw.recv()
                if msg is None:
                    return
                if isinstance(msg, Ping):
                    raw.send(Pong(msg.nonce ^ 1))  # a wrong nonce first: not a match
                    raw.send(Pong(msg.nonce))
                elif isinstance(msg, GetAddr):
                    when = int(time.time())
                    one = AddrEntry(when, 1, Service.parse("8.8.8.8:8333", 0))
                    two = AddrEntry(when, 1, Service.parse("9.9.9.9:8333", 0))
                    raw.send(Addr((one,)))  # a self-announcement: not the answer
                    raw.send(Addr((one, two)))

        task = asyncio.ensure_future(answer())
        rtt = await cm.request_pong(peer_id, timeout=5)
        assert 0 <= rtt < 5
        entries = await cm.request_addr(peer_id, timeout=5)
        assert [str(e.service) for e in entries] == ["8.8.8.8:8333", "9.9.9.9:8333"]
        assert len(cm.pending) == 0
        # The peer leaves while a request waits: the request fails with the reason.
        task.cancel()
        waiting = asyncio.ensure_future(cm.request_pong(peer_id, timeout=30))
        await asyncio.sleep(0.1)
        raw.close()
        with pytest.raises(RequestFailed):
            await waiting
        assert len(cm.pending) == 0
        with pytest.raises(KeyError):
            await cm.request_pong(12345, timeout=1)


async def test_request_times_out(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False) as a:
        raw = await raw_handshake(port_of(a))
        await wait_until(lambda: bool(a.connman.peers))
        peer_id = next(iter(a.connman.peers))
        with pytest.raises(RequestFailed, match="timeout"):
            await a.connman.request_pong(peer_id, timeout=0.2)  # the raw peer never answers
        assert len(a.connman.pending) == 0
        raw.close()
