"""A request/reply app on peerkeeper's native protocol: two nodes, one echoes upper-case.

    python3 examples/native_echo.py --text "hello"

Both nodes run in this process on 127.0.0.1 with their state in a temporary directory.
"""

import argparse
import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from peerkeeper import NativeConfig, NativeNode, Service


@dataclass(frozen=True)
class Shout:
    """A typed message: a ``type`` name, ``encode()`` and ``decode(payload)``."""

    type: ClassVar[str] = "shout"
    text: str

    def encode(self) -> bytes:
        return self.text.encode()

    @classmethod
    def decode(cls, payload: bytes) -> "Shout":
        return cls(payload.decode())


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        low_pow = 8.0  # a quick demo identity; the default is 20 bits
        a_cfg = NativeConfig(datadir=Path(tmp, "a"), pow_difficulty=low_pow)
        b_cfg = NativeConfig(datadir=Path(tmp, "b"), pow_difficulty=low_pow)
        async with NativeNode(a_cfg) as a, NativeNode(b_cfg) as b:
            for node in (a, b):
                node.dispatcher.codecs.register(Shout)
            b.dispatcher.on("shout", lambda inc: inc.reply(Shout(inc.message.text.upper())))
            port = b.listening[0][1]
            peer = await a.connect(Service.parse(f"127.0.0.1:{port}", port))
            if peer is None:
                raise SystemExit("could not connect")
            reply = await a.dispatch.request(peer, Shout(args.text), timeout=10)
            print(f"{a.peer_id} asked {args.text!r}, {peer} answered {reply.text!r}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default="hello, peer")
    asyncio.run(main(p.parse_args()))
