"""Fetch block headers from a Bitcoin peer with getheaders, from genesis up.

    python3 examples/fetch_headers.py --peer 127.0.0.1:18444 --chain regtest

``--dialmap FILE`` reaches a ``peerkeeper lab`` network by its virtual addresses.
"""

import argparse
import asyncio
import sys
from pathlib import Path

from peerkeeper import Config, GetHeaders, Headers, Node

GENESIS = {  # block 0 of each chain, in display order
    "main": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    "regtest": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
}


async def main(args: argparse.Namespace) -> None:
    config = Config(chain=args.chain, connect=["0"], dialmap=args.dialmap)
    async with Node(config) as node:
        peer = await node.connect(args.peer)
        locator = [bytes.fromhex(GENESIS[args.chain])[::-1]]  # wire order
        total = 0
        while total < args.max:
            reply = await node.request(peer, GetHeaders(locator=locator), expect=Headers)
            assert isinstance(reply, Headers)
            if not reply.headers:
                break
            for h in reply.headers:
                total += 1
                print(f"{total:>7} {h.hash()[::-1].hex()} time={h.time}")
            locator = [reply.headers[-1].hash()]
        print(f"{total} headers from {peer.name}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", required=True, help="HOST:PORT of a Bitcoin node")
    p.add_argument("--chain", default="regtest", choices=sorted(GENESIS))
    p.add_argument("--max", type=int, default=10_000, help="stop after this many headers")
    p.add_argument("--dialmap", type=Path)
    try:
        asyncio.run(main(p.parse_args()))
    except (OSError, ValueError) as e:  # ConnectError, ConfigError, a bad --tx ...
        sys.exit(f"error: {e}")
