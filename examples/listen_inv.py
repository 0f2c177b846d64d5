"""Print the inventory a Bitcoin peer announces (blocks and transactions), as it comes.

    python3 examples/listen_inv.py --peer 127.0.0.1:18444 --chain regtest --seconds 60

``--dialmap FILE`` reaches a ``peerkeeper lab`` network by its virtual addresses.
"""

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from peerkeeper import Config, Inv, Node

KINDS = {1: "tx", 2: "block", 5: "wtx", 0x40000001: "witness-tx", 0x40000002: "witness-block"}


async def main(args: argparse.Namespace) -> None:
    config = Config(chain=args.chain, connect=["0"], dialmap=args.dialmap)
    async with Node(config) as node:
        peer = await node.connect(args.peer)  # raises ConnectError with the reason
        print(f"connected to {peer.name}: {peer.user_agent}, height {peer.start_height}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.seconds):
                async for peer, inv in node.messages(Inv):
                    for kind, h in inv.items:
                        print(f"peer={peer.id} {KINDS.get(kind, kind)} {h[::-1].hex()}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", required=True, help="HOST:PORT of a Bitcoin node")
    p.add_argument("--chain", default="regtest")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--dialmap", type=Path)
    try:
        asyncio.run(main(p.parse_args()))
    except (OSError, ValueError) as e:  # ConnectError, ConfigError, a bad --tx ...
        sys.exit(f"error: {e}")
