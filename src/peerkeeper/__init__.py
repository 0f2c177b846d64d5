"""peerkeeper: a peer-to-peer connection manager speaking the Bitcoin P2P protocol.

The public facade. ``import peerkeeper`` is cheap: each name below is imported on first
use (PEP 562 ``__getattr__``), so ``import peerkeeper.wire`` never pulls in asyncio,
SQLite or the daemon.

* nodes: :class:`Node` and :class:`Config` (Bitcoin, Core's options),
  :class:`NativeNode` and :class:`NativeConfig` (the native protocol, Octez's pool);
* addresses: :class:`NetAddr`, :class:`Service` (address + port), :class:`SubNet`,
  :class:`Network`, :class:`AddrEntry` (an address with its time and services),
  :class:`ServiceFlags`, :class:`ConnectionType`;
* native identities and dispatch: :class:`PeerId`, :class:`Identity`,
  :class:`Dispatcher`;
* the Bitcoin node's application API (:mod:`peerkeeper.shell.peerapi`): :class:`Peer`,
  :class:`PeerConnected`, :class:`PeerDisconnected`, :class:`DisconnectReason`,
  :class:`NodeStats`; the messages an application sends and receives: :class:`Message`,
  :class:`Inv`, :class:`GetData`, :class:`NotFound`, :class:`GetHeaders`,
  :class:`Headers`, :class:`Tx`, :class:`Block`, :class:`Ping`, :class:`Pong`,
  :class:`GetAddr`, :class:`Addr`, :class:`AddrV2`, :class:`FeeFilter`,
  :class:`SendCmpct`, :class:`BlockHeader`;
* errors: :class:`AddrError`, :class:`DecodeError`, :class:`TransportError`,
  :class:`ConfigError`, :class:`ConnectError`, :class:`ProxyError`,
  :class:`RequestFailed`, :class:`RpcError`, :class:`IdentityError`,
  :class:`AddrManFormatError`, :class:`BanlistError`, :class:`StoreError`,
  :class:`DatadirLockedError`.

The layers and where each of Bitcoin Core's and Octez's concepts lives are in
ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Node": "peerkeeper.daemon.node",
    "Config": "peerkeeper.daemon.config",
    "ConfigError": "peerkeeper.daemon.config",
    "NativeNode": "peerkeeper.shell.nativenode",
    "NativeConfig": "peerkeeper.shell.nativenode",
    "NetAddr": "peerkeeper.net.netaddr",
    "Service": "peerkeeper.net.netaddr",
    "SubNet": "peerkeeper.net.netaddr",
    "Network": "peerkeeper.net.netaddr",
    "AddrError": "peerkeeper.net.netaddr",
    "ConnectionType": "peerkeeper.net.connection_types",
    "ServiceFlags": "peerkeeper.wire.messages",
    "AddrEntry": "peerkeeper.wire.messages",
    "DecodeError": "peerkeeper.wire.codec",
    "TransportError": "peerkeeper.wire.v1",
    "Dispatcher": "peerkeeper.dispatch.dispatcher",
    "PeerId": "peerkeeper.native.identity",
    "Identity": "peerkeeper.native.identity",
    "IdentityError": "peerkeeper.native.identity",
    "AddrManFormatError": "peerkeeper.bitcoin.addrman",
    "BanlistError": "peerkeeper.bitcoin.banman",
    "ConnectError": "peerkeeper.net.netbase",
    "ProxyError": "peerkeeper.net.netbase",
    "StoreError": "peerkeeper.io.store",
    "DatadirLockedError": "peerkeeper.io.store",
    "RequestFailed": "peerkeeper.shell.dispatch",
    "RpcError": "peerkeeper.daemon.rpc",
    "Peer": "peerkeeper.shell.peerapi",
    "PeerConnected": "peerkeeper.shell.peerapi",
    "PeerDisconnected": "peerkeeper.shell.peerapi",
    "NodeStats": "peerkeeper.shell.peerapi",
    "DisconnectReason": "peerkeeper.bitcoin.app",
    "tune_malloc": "peerkeeper.io.malloc",
    **{
        name: "peerkeeper.wire.messages"
        for name in (
            "Message",
            "Inv",
            "GetData",
            "NotFound",
            "GetHeaders",
            "Headers",
            "Tx",
            "Block",
            "BlockHeader",
            "Ping",
            "Pong",
            "GetAddr",
            "Addr",
            "AddrV2",
            "FeeFilter",
            "SendCmpct",
        )
    },
}

__all__ = [
    "__version__",
    "tune_malloc",
    "Addr",
    "AddrEntry",
    "AddrError",
    "AddrManFormatError",
    "AddrV2",
    "BanlistError",
    "Block",
    "BlockHeader",
    "Config",
    "ConfigError",
    "ConnectError",
    "ConnectionType",
    "DatadirLockedError",
    "DecodeError",
    "DisconnectReason",
    "Dispatcher",
    "FeeFilter",
    "GetAddr",
    "GetData",
    "GetHeaders",
    "Headers",
    "Identity",
    "IdentityError",
    "Inv",
    "Message",
    "NativeConfig",
    "NativeNode",
    "NetAddr",
    "Network",
    "Node",
    "NodeStats",
    "NotFound",
    "Peer",
    "PeerConnected",
    "PeerDisconnected",
    "PeerId",
    "Ping",
    "Pong",
    "ProxyError",
    "RequestFailed",
    "RpcError",
    "SendCmpct",
    "Service",
    "ServiceFlags",
    "StoreError",
    "SubNet",
    "TransportError",
    "Tx",
]

if TYPE_CHECKING:
    from peerkeeper.bitcoin.addrman import AddrManFormatError
    from peerkeeper.bitcoin.app import DisconnectReason
    from peerkeeper.bitcoin.banman import BanlistError
    from peerkeeper.daemon.config import Config, ConfigError
    from peerkeeper.daemon.node import Node
    from peerkeeper.daemon.rpc import RpcError
    from peerkeeper.dispatch.dispatcher import Dispatcher
    from peerkeeper.io.store import DatadirLockedError, StoreError
    from peerkeeper.native.identity import Identity, IdentityError, PeerId
    from peerkeeper.net.connection_types import ConnectionType
    from peerkeeper.net.netaddr import AddrError, NetAddr, Network, Service, SubNet
    from peerkeeper.net.netbase import ConnectError, ProxyError
    from peerkeeper.shell.dispatch import RequestFailed
    from peerkeeper.shell.nativenode import NativeConfig, NativeNode
    from peerkeeper.shell.peerapi import NodeStats, Peer, PeerConnected, PeerDisconnected
    from peerkeeper.wire.codec import DecodeError
    from peerkeeper.wire.messages import (
        Addr,
        AddrEntry,
        AddrV2,
        Block,
        BlockHeader,
        FeeFilter,
        GetAddr,
        GetData,
        GetHeaders,
        Headers,
        Inv,
        Message,
        NotFound,
        Ping,
        Pong,
        SendCmpct,
        ServiceFlags,
        Tx,
    )
    from peerkeeper.wire.v1 import TransportError


def __getattr__(name: str) -> Any:
    """PEP 562: import a public name's module on first use; AttributeError otherwise."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'peerkeeper' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
