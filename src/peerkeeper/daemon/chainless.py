"""The chain and mempool RPCs of a node that validates nothing: honest answers from headers.

peerkeeper keeps peers; it validates no blocks and keeps no mempool. Tools that drive a
``bitcoind`` (Core's functional test framework waits on ``getblockcount`` and
``getmempoolinfo``, mines one block with ``generatetoaddress`` and hands it around with
``getblock``/``submitblock``, then compares ``getbestblockhash``) still get Core's method
names, arguments and fields, describing the node's chain of headers
(:class:`~peerkeeper.bitcoin.headerchain.HeaderChain`: genesis, whatever Core block files
are in the datadir, and the blocks mined or submitted here, header-only) and an empty,
loaded mempool. Every other chain or wallet method is Core's "Method not found"
(-32601) because it is simply not registered.

Sources: src/rpc/blockchain.cpp (``getblockcount``, ``getbestblockhash``,
``getblockhash``, ``getblockheader``, ``getblock``, ``getblockchaininfo``),
src/rpc/mining.cpp (``generatetoaddress``, ``submitblock``), src/rpc/mempool.cpp
(``getmempoolinfo``, ``getrawmempool``), src/rpc/node.cpp (``echo``,
``syncwithvalidationinterfacequeue``), genesis blocks from src/kernel/chainparams.cpp.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from peerkeeper.bitcoin.headerchain import (
    GENESIS_HEADERS,
    HeaderChain,
    HeaderError,
    block_hash,
    compact_target,
)
from peerkeeper.daemon.rpc import RPC_MISC_ERROR, RPC_TYPE_ERROR, RpcError, rpc_param

__all__ = ["GENESIS", "ChainRpc", "Genesis", "chainless_rpc_methods"]

#: Core's RPC error codes (src/rpc/protocol.h).
RPC_INVALID_PARAMETER = -8
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_DESERIALIZATION_ERROR = -22


@dataclass(frozen=True, slots=True)
class Genesis:
    """One chain's genesis block: hash (hex), time (unix seconds), compact target."""

    hash: str
    time: int
    bits: int


def _genesis_of(header: bytes) -> Genesis:
    time, bits = struct.unpack_from("<II", header, 68)
    return Genesis(block_hash(header), time, bits)


#: Each chain's genesis (src/kernel/chainparams.cpp): from its header where carried;
#: testnet4's coinbase differs and only its hash, time and target are kept.
GENESIS: dict[str, Genesis] = {
    chain: _genesis_of(header) for chain, header in GENESIS_HEADERS.items()
} | {
    "testnet4": Genesis(
        "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043", 1714777860, 0x1D00FFFF
    )
}


def _difficulty(bits: int) -> float:
    """Core ``GetDifficulty``: the difficulty-1 target over this one, from the compact form."""
    shift = (bits >> 24) & 0xFF
    diff = 0x0000FFFF / (bits & 0x00FFFFFF)
    while shift < 29:
        diff *= 256.0
        shift += 1
    while shift > 29:
        diff /= 256.0
        shift -= 1
    return diff


def _work(bits: int) -> int:
    """Core ``GetBlockProof``: 2**256 / (target + 1)."""
    return (1 << 256) // (compact_target(bits) + 1)


Handler = Callable[[list[Any] | dict[str, Any]], Awaitable[Any]]


class ChainRpc:
    """The chain, block and mempool RPC handlers for one node (see the module docstring).

    ``ChainRpc(chain, headers, clock, on_new_header)``: with ``headers``, the block
    methods answer from it (``on_new_header`` is told of each header mined or submitted,
    to keep it); without (a chain whose genesis header is not carried), from genesis
    alone. ``clock`` is the node's (mockable) time. Raises ``KeyError`` for an unknown
    chain."""

    def __init__(
        self,
        chain: str,
        headers: HeaderChain | None,
        clock: Callable[[], float],
        on_new_header: Callable[[bytes], None] = lambda raw: None,
    ) -> None:
        self.chain = chain
        self.genesis = GENESIS[chain]
        self.headers = headers
        self.clock = clock
        self.on_new_header = on_new_header
        self._tip_changed = asyncio.Event()

    def _new_tip(self, raw: bytes) -> None:
        self.on_new_header(raw)
        self._tip_changed.set()  # wake every waitforblockheight, then re-arm
        self._tip_changed = asyncio.Event()

    def height(self) -> int:
        return self.headers.height if self.headers is not None else 0

    def tip(self) -> str:
        return self.headers.tip if self.headers is not None else self.genesis.hash

    def bits_time(self, h: int) -> tuple[int, int]:
        if self.headers is None:
            return self.genesis.bits, self.genesis.time
        return self.headers.bits_at(h), self.headers.time_at(h)

    def chainwork(self, h: int) -> str:
        total = sum(_work(self.bits_time(i)[0]) for i in range(h + 1))
        return f"{total:064x}"

    def lookup(self, params: list[Any] | dict[str, Any]) -> tuple[str, int, bytes | None]:
        block = rpc_param(params, 0, "blockhash")
        h = (
            self.headers.height_of(block)
            if self.headers is not None
            else (0 if block == self.genesis.hash else None)
        )
        if not isinstance(block, str) or h is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        return block, h, self.headers.header(block) if self.headers is not None else None

    def header_json(self, block: str, h: int, raw: bytes | None) -> dict[str, Any]:
        bits, time = self.bits_time(h)
        info: dict[str, Any] = {
            "hash": block,
            "confirmations": self.height() - h + 1,
            "height": h,
        }
        if raw is not None:
            version, _, merkle, _, _, nonce = struct.unpack("<I32s32sIII", raw)
            info |= {
                "version": version,
                "versionHex": f"{version:08x}",
                "merkleroot": merkle[::-1].hex(),
                "nonce": nonce,
            }
        info |= {
            "time": time,
            "bits": f"{bits:08x}",
            "target": f"{compact_target(bits):064x}",
            "difficulty": _difficulty(bits),
            "chainwork": self.chainwork(h),
            "nTx": 0,
        }
        if h > 0 and self.headers is not None:
            info["previousblockhash"] = self.headers.hash_at(h - 1)
        following = self.headers.hash_at(h + 1) if self.headers is not None else None
        if following is not None:
            info["nextblockhash"] = following
        return info

    async def getblockcount(self, params: list[Any] | dict[str, Any]) -> int:
        return self.height()

    async def getbestblockhash(self, params: list[Any] | dict[str, Any]) -> str:
        return self.tip()

    async def getblockhash(self, params: list[Any] | dict[str, Any]) -> str:
        h = rpc_param(params, 0, "height")
        found = None
        if isinstance(h, int) and not isinstance(h, bool):
            found = self.genesis.hash if self.headers is None and h == 0 else None
            if self.headers is not None:
                found = self.headers.hash_at(h)
        if found is None:
            raise RpcError(RPC_INVALID_PARAMETER, "Block height out of range")
        return found

    async def getblockheader(self, params: list[Any] | dict[str, Any]) -> Any:
        block, h, raw = self.lookup(params)
        if not rpc_param(params, 1, "verbose", True):
            if raw is None:
                raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            return raw.hex()
        return self.header_json(block, h, raw)

    async def getblock(self, params: list[Any] | dict[str, Any]) -> Any:
        block, h, raw = self.lookup(params)
        verbosity = rpc_param(params, 1, "verbosity", 1)
        if verbosity is False or verbosity == 0:
            if raw is None:
                raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            return (raw + b"\x00").hex()  # header-only: an empty transaction list
        return self.header_json(block, h, raw) | {"tx": [], "size": 81, "weight": 324}

    async def getblockchaininfo(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        h = self.height()
        bits, time = self.bits_time(h)
        times = sorted(self.bits_time(i)[1] for i in range(max(0, h - 10), h + 1))
        return {
            "chain": self.chain,
            "blocks": h,
            "headers": h,
            "bestblockhash": self.tip(),
            "bits": f"{bits:08x}",
            "target": f"{compact_target(bits):064x}",
            "difficulty": _difficulty(bits),
            "time": time,
            "mediantime": times[len(times) // 2],
            "verificationprogress": 1,
            "initialblockdownload": time < self.clock() - 24 * 3600,  # Core's max tip age
            "chainwork": self.chainwork(h),
            "size_on_disk": 0,
            "pruned": False,
            "warnings": [],
        }

    async def generatetoaddress(self, params: list[Any] | dict[str, Any]) -> list[str]:
        nblocks = rpc_param(params, 0, "nblocks")
        max_tries = rpc_param(params, 2, "maxtries", 1_000_000)
        if self.headers is None or not isinstance(nblocks, int) or nblocks < 0:
            raise RpcError(RPC_INVALID_PARAMETER, "cannot mine on this chain")
        made = []
        for _ in range(nblocks):
            try:
                raw = self.headers.mine(self.clock(), max_tries)
            except HeaderError:
                break
            made.append(self.headers.add(raw))
            self._new_tip(raw)
        return made

    async def submitblock(self, params: list[Any] | dict[str, Any]) -> str | None:
        text = rpc_param(params, 0, "hexdata")
        try:
            raw = binascii.unhexlify(text) if isinstance(text, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < 80:
            raise RpcError(RPC_DESERIALIZATION_ERROR, "Block decode failed")
        if self.headers is None:
            return "inconclusive"
        try:
            self.headers.add(raw)
        except HeaderError as e:
            return str(e)
        self._new_tip(raw[:80])
        return None

    async def getchaintips(self, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        """Core ``getchaintips``: our header chain has one tip, the active one."""
        return [{"height": self.height(), "hash": self.tip(), "branchlen": 0, "status": "active"}]

    async def waitforblockheight(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """Core ``waitforblockheight height ( timeout )`` (src/rpc/blockchain.cpp): wait
        until the tip reaches ``height`` or ``timeout`` ms pass (0: no limit), then return
        the tip's hash and height. Woken by this table's generatetoaddress and
        submitblock; a tip moved another way is seen within a second."""
        height = rpc_param(params, 0, "height")
        timeout = rpc_param(params, 1, "timeout", 0) or 0
        if not isinstance(height, int) or not isinstance(timeout, int):
            raise RpcError(RPC_TYPE_ERROR, "height and timeout must be integers")
        if timeout < 0:
            raise RpcError(RPC_MISC_ERROR, "Negative timeout")
        deadline = time.monotonic() + timeout / 1000
        while self.height() < height:
            wait = 1.0 if timeout == 0 else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._tip_changed.wait()
        return {"hash": self.tip(), "height": self.height()}

    async def getmempoolinfo(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        return {
            "loaded": True,
            "size": 0,
            "bytes": 0,
            "usage": 0,
            "total_fee": 0.0,
            "maxmempool": 300_000_000,
            "mempoolminfee": 0.00001,
            "minrelaytxfee": 0.00001,
            "incrementalrelayfee": 0.00001,
            "unbroadcastcount": 0,
            "fullrbf": True,
        }

    async def getrawmempool(self, params: list[Any] | dict[str, Any]) -> Any:
        return {} if rpc_param(params, 0, "verbose") else []

    async def syncwithvalidationinterfacequeue(self, params: list[Any] | dict[str, Any]) -> None:
        return None

    async def echo(self, params: list[Any] | dict[str, Any]) -> Any:
        if isinstance(params, dict):
            return params.get("args", [])
        return params

    def methods(self) -> dict[str, Handler]:
        """Method name -> bound async handler."""
        return {
            "getblockcount": self.getblockcount,
            "getbestblockhash": self.getbestblockhash,
            "getblockhash": self.getblockhash,
            "getblockheader": self.getblockheader,
            "getblock": self.getblock,
            "getblockchaininfo": self.getblockchaininfo,
            "generatetoaddress": self.generatetoaddress,
            "submitblock": self.submitblock,
            "getchaintips": self.getchaintips,
            "waitforblockheight": self.waitforblockheight,
            "getmempoolinfo": self.getmempoolinfo,
            "getrawmempool": self.getrawmempool,
            "syncwithvalidationinterfacequeue": self.syncwithvalidationinterfacequeue,
            "echo": self.echo,
        }


def chainless_rpc_methods(
    chain: str,
    headers: HeaderChain | None,
    clock: Callable[[], float],
    on_new_header: Callable[[bytes], None] = lambda raw: None,
) -> dict[str, Handler]:
    """Method name -> async handler (:class:`ChainRpc`) for ``chain``."""
    return ChainRpc(chain, headers, clock, on_new_header).methods()
