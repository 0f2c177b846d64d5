"""Announce a raw transaction to N Bitcoin peers and report which of them asked for it.

    python3 examples/broadcast_tx.py --peer 127.0.0.1:18444 --peer ... --tx RAW_HEX

The transaction is announced with ``inv`` and sent to whoever answers ``getdata``, as
Core relays one; peers that already have it, or keep no mempool (peerkeeper nodes),
do not ask. ``--dialmap FILE`` reaches a ``peerkeeper lab`` network.
"""

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from peerkeeper import Config, GetData, Inv, Node, Peer, Tx

MSG_TX, MSG_WTX = 1, 5  # by txid; by wtxid to peers that sent wtxidrelay (BIP339)
# A version-2 transaction with one input and one output (not valid on any chain).
EXAMPLE_TX = "0200000001" + "11" * 32 + "0000000000ffffffff01e8030000000000000000000000"


async def main(args: argparse.Namespace) -> None:
    tx = Tx(bytes.fromhex(args.tx))
    asked: set[str] = set()

    def on_getdata(peer: Peer, msg: GetData) -> None:
        if any(h in (tx.txid, tx.wtxid) for _, h in msg.items):
            asked.add(peer.name)
            node.push_message(peer, tx)

    config = Config(chain=args.chain, connect=["0"], dialmap=args.dialmap)
    async with Node(config) as node:
        # ask for transaction relay in our version message, as Core does
        opts = node.connman.options
        opts.peer = dataclasses.replace(opts.peer, relay=True)
        node.on(GetData, on_getdata)
        peers = [await node.connect(p) for p in args.peer]
        # Core ignores the kind its peer did not negotiate, so announce both
        sent = node.broadcast(Inv([(MSG_TX, tx.txid), (MSG_WTX, tx.wtxid)]))
        print(f"announced {tx.txid[::-1].hex()} to {sent} peers")
        await asyncio.sleep(args.seconds)  # Core asks inbound announcers after ~2 s
        print(f"{len(asked)} of {len(peers)} asked for it: {sorted(asked)}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", action="append", required=True, help="HOST:PORT (repeat)")
    p.add_argument("--tx", default=EXAMPLE_TX, help="the raw transaction, hex")
    p.add_argument("--chain", default="regtest")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--dialmap", type=Path)
    try:
        asyncio.run(main(p.parse_args()))
    except (OSError, ValueError) as e:  # ConnectError, ConfigError, a bad --tx ...
        sys.exit(f"error: {e}")
