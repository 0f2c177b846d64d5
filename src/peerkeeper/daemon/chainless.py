"""The chain and mempool RPCs of a node that has neither: honest answers for genesis only.

peerkeeper keeps peers; it validates no blocks and keeps no mempool. Tools that drive a
``bitcoind`` (Core's functional test framework waits on ``getblockcount`` and
``getmempoolinfo``, then compares ``getbestblockhash`` and ``getrawmempool`` across nodes)
still get Core's method names, arguments and fields, describing a chain that is only its
genesis block and an empty, loaded mempool. Every other chain or wallet method is
Core's "Method not found" (-32601) because it is simply not registered.

Sources: src/rpc/blockchain.cpp (``getblockcount``, ``getbestblockhash``,
``getblockhash``, ``getblockchaininfo``), src/rpc/mempool.cpp (``getmempoolinfo``,
``getrawmempool``), src/rpc/node.cpp (``echo``, ``syncwithvalidationinterfacequeue``),
genesis blocks from src/kernel/chainparams.cpp.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["GENESIS", "Genesis", "chainless_rpc_methods"]

#: Core's RPC_INVALID_PARAMETER (src/rpc/protocol.h).
RPC_INVALID_PARAMETER = -8


@dataclass(frozen=True, slots=True)
class Genesis:
    """One chain's genesis block: hash (hex), time (unix seconds), compact target."""

    hash: str
    time: int
    bits: int


#: src/kernel/chainparams.cpp ``CreateGenesisBlock`` and ``hashGenesisBlock`` per chain.
GENESIS: dict[str, Genesis] = {
    "main": Genesis(
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", 1231006505, 0x1D00FFFF
    ),
    "test": Genesis(
        "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943", 1296688602, 0x1D00FFFF
    ),
    "testnet4": Genesis(
        "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043", 1714777860, 0x1D00FFFF
    ),
    "signet": Genesis(
        "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6", 1598918400, 0x1E0377AE
    ),
    "regtest": Genesis(
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", 1296688602, 0x207FFFFF
    ),
}


def _target(bits: int) -> int:
    """Core ``arith_uint256::SetCompact`` for a positive, non-overflowing compact value."""
    size, word = bits >> 24, bits & 0x007FFFFF
    return word >> 8 * (3 - size) if size <= 3 else word << 8 * (size - 3)


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


Handler = Callable[[list[Any] | dict[str, Any]], Awaitable[Any]]


def chainless_rpc_methods(chain: str) -> dict[str, Handler]:
    """Method name -> async handler for ``chain``'s genesis-only chain and empty mempool.

    Raises ``KeyError`` for a chain without a known genesis."""
    genesis = GENESIS[chain]

    def param(params: list[Any] | dict[str, Any], index: int, name: str) -> Any:
        if isinstance(params, dict):
            if name in params:
                return params[name]
            args = params.get("args", [])
            return args[index] if isinstance(args, list) and len(args) > index else None
        return params[index] if len(params) > index else None

    async def getblockcount(params: list[Any] | dict[str, Any]) -> int:
        return 0

    async def getbestblockhash(params: list[Any] | dict[str, Any]) -> str:
        return genesis.hash

    async def getblockhash(params: list[Any] | dict[str, Any]) -> str:
        from peerkeeper.daemon.rpc import RpcError

        height = param(params, 0, "height")
        if height != 0:
            raise RpcError(RPC_INVALID_PARAMETER, "Block height out of range")
        return genesis.hash

    async def getblockchaininfo(params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        return {
            "chain": chain,
            "blocks": 0,
            "headers": 0,
            "bestblockhash": genesis.hash,
            "bits": f"{genesis.bits:08x}",
            "target": f"{_target(genesis.bits):064x}",
            "difficulty": _difficulty(genesis.bits),
            "time": genesis.time,
            "mediantime": genesis.time,
            "verificationprogress": 1,
            "initialblockdownload": True,  # the tip (genesis) is far older than a day
            "chainwork": f"{(1 << 256) // (_target(genesis.bits) + 1):064x}",
            "size_on_disk": 0,
            "pruned": False,
            "warnings": [],
        }

    async def getmempoolinfo(params: list[Any] | dict[str, Any]) -> dict[str, Any]:
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

    async def getrawmempool(params: list[Any] | dict[str, Any]) -> Any:
        verbose = param(params, 0, "verbose")
        return {} if verbose else []

    async def syncwithvalidationinterfacequeue(params: list[Any] | dict[str, Any]) -> None:
        return None

    async def echo(params: list[Any] | dict[str, Any]) -> Any:
        if isinstance(params, dict):
            return params.get("args", [])
        return params

    return {
        "getblockcount": getblockcount,
        "getbestblockhash": getbestblockhash,
        "getblockhash": getblockhash,
        "getblockchaininfo": getblockchaininfo,
        "getmempoolinfo": getmempoolinfo,
        "getrawmempool": getrawmempool,
        "syncwithvalidationinterfacequeue": syncwithvalidationinterfacequeue,
        "echo": echo,
    }
