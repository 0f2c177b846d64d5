"""The ``peerkeeper`` console script: a light front door to :mod:`peerkeeper.daemon.cli`.

``peerkeeper rpc METHOD [ARGS...]`` is called often and briefly (scripts, shells), as
bitcoin-cli is, so it does not pay for the node's imports (aiohttp, asyncio, the
protocol layers: a third of a second or more): :func:`main` hands it to
:func:`peerkeeper.daemon.rpcclient.main`, which needs only the standard library.
Everything else, and the rpc calls the light client leaves (``--help``, ``-netinfo``,
``-getinfo``, ``-addrinfo``, arguments it cannot parse), goes to
:func:`peerkeeper.daemon.cli.main`, unchanged.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``peerkeeper`` console script; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args[:1] == ["rpc"]:
            from peerkeeper.daemon.rpcclient import main as rpc_main

            status = rpc_main(args[1:])
            if status is not None:
                return status
        from peerkeeper.daemon.cli import main as cli_main

        return cli_main(args)
    except BrokenPipeError:
        # The reader went away (``peerkeeper rpc getpeerinfo | head``): no traceback, and
        # none at exit either when Python flushes stdout (the Python docs' recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
