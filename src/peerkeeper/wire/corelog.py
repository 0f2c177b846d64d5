"""Bitcoin Core's log lines for network events, word for word: the compatibility table.

Core's functional tests (``assert_debug_log``) and the tools that read Core's debug.log
match these texts, so peerkeeper writes them exactly as Core does. Every template here
is printf-style as in Core (``%s``, ``%d``, ``%u``, ``%x``, ``%f``, ``%.1f``) and names the
Core source it was copied from (Core b88bffe). It lives in the wire layer so that every
layer above (the codecs' limits, the peer and connection cores, the daemon) can use it. The modules that log these events take
their text from here, never spell it themselves; the level in each comment is Core's
(``LogDebug(BCLog::NET, ...)`` is a ``debug`` line of category ``net``).

Where a line names a peer, Core writes ``peer=N`` and, with ``-logips``, ``, peeraddr=A``
(``CNode::LogPeer``): :func:`log_peer` and :func:`disconnect_msg` do the same, after
:func:`set_log_ips`.
"""

from __future__ import annotations

import errno

__all__ = [
    "disconnect_msg",
    "host_port",
    "log_peer",
    "message_type",
    "sanitize_string",
    "set_log_ips",
    "unable_to_bind",
]

_LOG_IPS = [False]


def set_log_ips(on: bool) -> None:
    """``-logips`` (Core ``fLogIPs``, default off): peer lines also carry the address."""
    _LOG_IPS[0] = on


def log_peer(peer_id: int, addr: object) -> str:
    """Core ``CNode::LogPeer`` (src/net.cpp): ``peer=N`` [``, peeraddr=ADDR:PORT``]."""
    return LOG_PEER_WITH_ADDR % (peer_id, addr) if _LOG_IPS[0] else LOG_PEER % peer_id


_SAFE_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-_/:?@()"
)


def sanitize_string(s: str) -> str:
    """Keep only Core's ``SAFE_CHARS_DEFAULT`` (src/util/strencodings.cpp ``SanitizeString``):
    what Core does to a peer's user agent and message types before it logs them."""
    return "".join(c for c in s if c in _SAFE_CHARS)


def message_type(raw: bytes) -> str:
    """Core ``CMessageHeader::GetMessageType`` then ``SanitizeString``: the 12-byte field
    up to its first NUL, unsafe characters removed."""
    return sanitize_string(raw.split(b"\0", 1)[0].decode("latin-1"))


def host_port(host: str, port: int) -> str:
    """Core ``ToStringAddrPort``: ``1.2.3.4:8333``, ``[::1]:8333``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def unable_to_bind(host: str, port: int, error: OSError, client: str = "peerkeeper") -> str:
    """Core ``BindListenPort``'s error text for ``error`` (an ``OSError`` from bind)."""
    where = host_port(host, port)
    if error.errno == errno.EADDRINUSE:
        return UNABLE_TO_BIND_IN_USE % (where, client)
    reason = f"{error.strerror} ({error.errno})" if error.strerror else str(error)
    return UNABLE_TO_BIND % (where, reason)


def disconnect_msg(peer_id: int, addr: object) -> str:
    """Core ``CNode::DisconnectMsg`` (src/net.cpp): ``disconnecting peer=N``..."""
    return f"disconnecting {log_peer(peer_id, addr)}"


# --- src/net.cpp ------------------------------------------------------------------------

#: CNode::LogPeer, without and with -logips.
LOG_PEER = "peer=%d"
LOG_PEER_WITH_ADDR = "peer=%d, peeraddr=%s"

#: debug, ConnectNode.
TRYING_CONNECTION = "trying %s connection (%s) to %s, lastseen=%.1fhrs"
#: info, ConnectNode.
ALREADY_CONNECTED = "Failed to open new connection to %s, already connected"
#: debug, CNode::CNode (outbound, then inbound).
ADDED_CONNECTION_TO = "Added connection to %s peer=%d"
ADDED_CONNECTION = "Added connection peer=%d"
#: debug, CreateNodeFromAcceptedSocket.
DROPPED_NOT_ACCEPTING = "connection from %s dropped: not accepting new connections"
DROPPED_BANNED = "connection from %s dropped (banned)"
DROPPED_DISCOURAGED = "connection from %s dropped (discouraged)"
DROPPED_FULL = "failed to find an eviction candidate - connection dropped (full)"
#: debug, AttemptToEvictConnection: the connection type, then DisconnectMsg.
SELECTED_FOR_EVICTION = "selected %s connection for eviction, %s"
#: debug, DisconnectNodes: a v2 attempt the peer hung up on is retried as v1.
RETRY_V1 = "retrying with v1 transport protocol for peer=%d"
#: debug, InactivityCheck: the reasons, each followed by ", " and DisconnectMsg.
SOCKET_NO_MESSAGE = "socket no message in first %d seconds%s"
SOCKET_SEND_TIMEOUT = "socket sending timeout: %ds"
SOCKET_RECV_TIMEOUT = "socket receive timeout: %ds"
V2_HANDSHAKE_TIMEOUT = "V2 handshake timeout"
VERSION_HANDSHAKE_TIMEOUT = "version handshake timeout"
#: debug, SocketHandlerConnected / DisconnectNodes / StopNodes: reasons likewise.
SOCKET_CLOSED = "socket closed"
NETWORK_NOT_ACTIVE = "Network not active"
STOPPING_NODE = "Stopping node"
#: debug, DisconnectNode(address / subnet / id): reasons likewise.
DISCONNECT_BY_ADDRESS = "disconnect by address match"
DISCONNECT_BY_SUBNET = "disconnect by subnet match"
DISCONNECT_BY_ID = "disconnect by id"
#: debug, a reason and CNode::DisconnectMsg (every disconnection above).
REASON_THEN_DISCONNECT = "%s, %s"
#: error, ThreadMessageHandler's catch around ProcessMessages: a message that does not
#: deserialize (the exception's text and type name are peerkeeper's own).
PROCESS_MESSAGE_EXCEPTION = "ProcessMessages(%s, %u bytes): Exception '%s' (%s) caught"
#: debug, PushMessage.
SENDING = "sending %s (%d bytes) peer=%d"
#: debug, ThreadOpenConnections.
MAKING_FEELER = "Making feeler connection to %s"
#: info, ThreadOpenConnections.
SEEDNODE_EMPTY_ADDRMAN = "Empty addrman, adding seednode (%s) to addrfetch"
SEEDNODE_AFTER = (
    "Couldn't connect to peers from addrman after %d seconds. Adding seednode (%s) to addrfetch"
)
FIXED_SEEDS_ADDED = "Added %d fixed seeds from reachable networks."
#: info, ThreadDNSAddressSeed.
SEEDNODE_ENABLED = (
    "-seednode enabled. Trying the provided seeds for %d seconds before defaulting to the dnsseeds."
)
SEEDNODE_GAVE_UP = (
    "Couldn't connect to enough peers via seed nodes. Handing fetch logic to the DNS seeds."
)
SEEDNODE_FINISHED = "P2P peers available. Finished fetching data from seed nodes."
DNS_ADDRESSES_FOUND = "%d addresses found from DNS seeds"
DNS_FINISHED = "P2P peers available. Finished DNS seeding."
DNS_SKIPPED = "P2P peers available. Skipped DNS seeding."
DNS_SKIPPING = "Skipping DNS seeds. Enough peers have been found"
DNS_WAITING = "Waiting %d seconds before querying DNS seeds."
DNS_WAITING_FOR_NETWORK = "Waiting for network to be reactivated before querying DNS seeds."
DNS_LOADING = "Loading addresses from DNS seed %s"
#: info, BindListenPort; the errors are init errors for an explicit -bind.
BOUND_TO = "Bound to %s"
UNABLE_TO_BIND_IN_USE = "Unable to bind to %s on this computer. %s is probably already running."
UNABLE_TO_BIND = "Unable to bind to %s on this computer (bind returned error %s)"
FAILED_TO_LISTEN = "Failed to listen on any port. Use -listen=0 if you want this."
#: debug, ConnectNode / V2Transport: the v2 handshake starts (our key goes out).
START_V2_HANDSHAKE = "start sending v2 handshake to peer=%d"
#: debug, GetLocalAddrForPeer / AdvertiseLocal.
ADVERTISING_ADDRESS = "Advertising address %s to peer=%d"
#: info, CConnman::SetNetworkActive (also from CConnman's constructor).
SET_NETWORK_ACTIVE = "SetNetworkActive: %s"
#: info, CConnman::Start.
ANCHORS_TRIED = "%d block-relay-only anchors will be tried for connections."
DNS_SEEDING_DISABLED = "DNS seeding disabled"

#: debug, V1Transport::GetReceivedMessage: the message is dropped, the peer stays.
WRONG_CHECKSUM = "Header error: Wrong checksum (%s, %u bytes), expected %s was %s, peer=%d"
INVALID_MESSAGE_TYPE = "Header error: Invalid message type (%s, %u bytes), peer=%d"

# --- src/net_processing.cpp -------------------------------------------------------------

#: debug, ProcessMessages (the message type sanitized, as Core's SanitizeString).
RECEIVED = "received: %s (%u bytes) peer=%d"
#: debug, ProcessMessage.
NON_VERSION_FIRST = 'non-version message before version handshake. Message "%s" from peer=%d'
UNSUPPORTED_BEFORE_VERACK = 'Unsupported message "%s" prior to verack from peer=%d'
REDUNDANT_VERACK = "ignoring redundant verack message from peer=%d"
REDUNDANT_VERSION = "redundant version message from peer=%d"
#: info for outbound, debug for inbound: type, transport, version, LogPeer, mapped AS.
NEW_PEER_CONNECTED = "New %s peer connected: transport: %s, version: %d, %s%s"
#: debug, GETADDR.
IGNORING_GETADDR = 'Ignoring "getaddr" from %s connection. peer=%d'
IGNORING_REPEATED_GETADDR = 'Ignoring repeated "getaddr". peer=%d'
#: debug, PONG.
PONG = "pong peer=%d: %s, %x expected, %x received, %u bytes"
#: debug, Misbehaving: ``": " + message`` when there is one.
MISBEHAVING = "Misbehaving: peer=%d%s"
#: MaybeDiscourageAndDisconnect: two warnings, then two debug lines.
NOT_PUNISHING_NOBAN = "Not punishing noban peer %d!"
NOT_PUNISHING_MANUAL = "Not punishing manually connected peer %d!"
NOT_DISCOURAGING_LOCAL = "Warning: disconnecting but not discouraging %s peer %d!"
DISCOURAGING = "Disconnecting and discouraging peer %d!"
#: debug, FinalizeNode.
CLEARED_NODESTATE = "Cleared nodestate for peer=%d"
#: debug, CheckForLimitedTxRelay... (the message type that completed the version).
TX_RELAY_EVICTION_FAILED = (
    "failed to find a tx-relaying eviction candidate - connection dropped after %s message, peer=%d"
)
#: debug, MaybeSendPing / ProcessMessage / SendMessages: reasons before DisconnectMsg.
PING_TIMEOUT = "ping timeout: %fs"
FEELER_COMPLETED = "feeler connection completed"
ADDRFETCH_COMPLETED = "addrfetch connection completed"
ADDRFETCH_TIMEOUT = "addrfetch connection timeout"
#: src/net_processing.cpp ``GETHEADERS``: a chain below the minimum work is not served.
GETHEADERS_TOO_LITTLE_WORK = (
    "Ignoring getheaders from peer=%d because active chain has too little work;"
    " sending empty response"
)
WTXIDRELAY_AFTER_VERACK = "wtxidrelay received after verack"
SENDADDRV2_AFTER_VERACK = "sendaddrv2 received after verack"
OBSOLETE_VERSION = "peer using obsolete version %d"
#: info, VERSION: our own nonce came back (an inbound connection from ourselves).
CONNECTED_TO_SELF = "connected to self at %s, disconnecting"
MISSING_SERVICES = "peer does not offer the expected services (%08x offered, %08x expected)"
#: the Misbehaving message of an addr/addrv2/inv/getdata/headers over its limit.
MESSAGE_SIZE = "%s message size = %u"

# --- src/init.cpp ----------------------------------------------------------------------

#: warning, AppInitMain: a whitespace-only -addnode value is dropped.
EMPTY_ADDNODE = "Ignoring empty -addnode value"

# --- src/banman.cpp ---------------------------------------------------------------------

#: debug, SweepBanned.
REMOVED_BANNED = "Removed banned node address/subnet: %s"
#: info, LoadBanlist: banlist.json was missing or unreadable.
RECREATING_BANLIST = "Recreating the banlist database"

# --- src/i2p.cpp (category i2p unless noted) ------------------------------------------------

#: debug, Session::CreateIfNotCreatedAlready: "transient" or "persistent", the id, the bridge.
I2P_CREATING_SESSION = "Creating %s I2P SAM session %s with %s"
#: info (no category), the same, once the router said OK: "Transient" or "Persistent".
I2P_SESSION_CREATED = "%s I2P SAM session %s created, my address=%s"
#: info (no category), Session::Disconnect.
I2P_DESTROYING_SESSION = "Destroying I2P SAM session %s"
I2P_DESTROYING_INCOMPLETE = "Destroying incomplete I2P SAM session"
#: debug, Session::Connect: SAM 3.1 has no ports, so only port 0 is dialled.
I2P_ARBITRARY_PORT = "Error connecting to %s, connection refused due to arbitrary port %s"
#: debug, Session::Connect: any other failure ("Cannot connect to 127.0.0.1:7656", ...).
I2P_ERROR_CONNECTING = "Error connecting to %s: %s"
#: error (no category), Session::Listen.
I2P_COULDNT_LISTEN = "Couldn't listen: %s"
#: debug, Session::Accept: " (will close the session)" or "", then the reason.
I2P_ERROR_ACCEPTING = "Error accepting%s: %s"
#: debug, Session::CheckControlSock.
I2P_CONTROL_SOCKET_ERROR = "Control socket error: %s"
