"""peerkeeper: a peer-to-peer connection manager speaking the Bitcoin P2P protocol.

See README.md and DESIGN.md for the layers; the sans-IO cores live in
:mod:`peerkeeper.wire`, :mod:`peerkeeper.protocols`, :mod:`peerkeeper.net.netaddr`;
the asyncio shell in :mod:`peerkeeper.io.sockman`, :mod:`peerkeeper.shell.connman` and
:mod:`peerkeeper.daemon.node`.
"""

__version__ = "0.1.0"
