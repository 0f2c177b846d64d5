"""peerkeeper: a peer-to-peer connection manager speaking the Bitcoin P2P protocol.

See README.md and DESIGN.md for the layers; the sans-IO cores live in
:mod:`peerkeeper.wire`, :mod:`peerkeeper.protocols`, :mod:`peerkeeper.netaddr`;
the asyncio shell in :mod:`peerkeeper.sockman`, :mod:`peerkeeper.connman` and
:mod:`peerkeeper.node`.
"""

__version__ = "0.1.0"
