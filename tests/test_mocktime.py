"""Core's setmocktime and mockscheduler RPCs: one clock drives every timer of the node."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support import handshaken, port_of, raw_handshake, running, wait_until

from peerkeeper.daemon.rpc import RpcError
from peerkeeper.shell.clock import MockableClock
from peerkeeper.wire.messages import Ping


def test_mockable_clock() -> None:
    clock = MockableClock(lambda: 5.0)
    assert clock() == 5.0
    clock.set_mocktime(1000)
    assert clock() == 1000.0
    clock.set_mocktime(0)
    assert clock() == 5.0
    with pytest.raises(ValueError, match="Mocktime must be in the range"):
        clock.set_mocktime(-1)


async def test_setmocktime_21_minutes_ahead_drops_an_idle_peer(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False) as node:
        peer = await raw_handshake(port_of(node))
        await wait_until(lambda: handshaken(node))
        methods = node.rpc_methods()
        # Core's TIMEOUT_INTERVAL is 20 minutes; 19 minutes on, the peer stays.
        await methods["setmocktime"]([int(time.time()) + 19 * 60])
        assert node.clock() == node.clock.mocktime
        # The 2-minute ping timer follows the mock time too: a ping comes at once.
        while not isinstance(await peer.recv(timeout=5), Ping):
            pass
        assert handshaken(node)
        await methods["setmocktime"]([int(time.time()) + 21 * 60])
        assert await peer.closed_by_peer()
        await wait_until(lambda: not node.connman.peers)
        await methods["setmocktime"]([0])
        assert node.clock.mocktime == 0


async def test_mockscheduler_900_triggers_the_address_book_dump(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as node:
        dumps = 0
        real = node.dump

        async def counting(**kw: object) -> None:
            nonlocal dumps
            dumps += 1
            await real(**kw)  # type: ignore[arg-type]

        node.dump = counting  # type: ignore[method-assign]
        methods = node.rpc_methods()
        await methods["mockscheduler"]([899])
        await asyncio.sleep(0.05)
        assert dumps == 0
        await methods["mockscheduler"]([1])
        await wait_until(lambda: dumps == 1, timeout=5)


async def test_mock_rpcs_check_their_arguments_and_chain(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as node:
        methods = node.rpc_methods()
        with pytest.raises(RpcError, match="Mocktime must be in the range"):
            await methods["setmocktime"]([-1])
        for bad in (0, 3601):
            with pytest.raises(RpcError, match="between 1 and 3600"):
                await methods["mockscheduler"]([bad])
        with pytest.raises(RpcError, match="Expected type number"):
            await methods["setmocktime"](["soon"])
    async with running(tmp_path, "m", chain="signet", dnsseed=False) as node:
        with pytest.raises(RpcError, match="regression testing"):
            await node.rpc_methods()["setmocktime"]([1])
