"""The node's I2P sessions on asyncio: what Core's ``CConnman`` keeps for I2P (src/net.cpp).

* ``m_i2p_sam_session``: one persistent :class:`~peerkeeper.io.i2psam.Session` when
  ``-i2pacceptincoming`` (Core's default) and ``-i2psam`` are set; every outbound I2P
  connection uses it too, so peers see the address we advertise.
* ``m_unused_i2p_sessions``: without it, each outbound I2P connection takes a transient
  session, which lives as long as that connection; one whose connect failed is kept
  for the next attempt, at most :data:`~peerkeeper.net.i2p.MAX_UNUSED_I2P_SESSIONS_SIZE`.
* ``ThreadI2PAcceptIncoming``: the accept loop. Listen, advertise our ``.b32.i2p``
  address (port 0) as a local address while listening works, accept a peer and hand
  its socket up; after a failure wait 1 s, one more each time, at most 5 min
  (:class:`~peerkeeper.net.i2p.AcceptBackoff`), and withdraw the address.

No rule of the connection manager lives here: ConnMan decides whom to dial and whom to
admit; this module only owns the sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from peerkeeper.io.i2psam import I2PConnectError, Session
from peerkeeper.net.i2p import MAX_UNUSED_I2P_SESSIONS_SIZE, REPLY_TIMEOUT, AcceptBackoff, I2PError
from peerkeeper.net.netaddr import Service
from peerkeeper.net.netbase import Proxy

__all__ = ["I2PSessions"]

log = logging.getLogger("peerkeeper.i2p")

#: ``(socket, stream bytes already read, our address, peer address)`` -> handled.
AdoptInbound = Callable[[socket.socket, bytes, Service, Service], Awaitable[None]]


class I2PSessions:
    """The I2P sessions of one node.

    ``I2PSessions(bridge, accept_incoming=True, private_key_file=None,
    connect_timeout=5.0, reply_timeout=180.0, rng=os.urandom, sleep=asyncio.sleep)``:
    ``bridge`` is ``-i2psam``; ``private_key_file`` the persistent session's key
    (``<datadir>/i2p_private_key``; None keeps it in memory). ``sleep`` is the accept
    loop's wait (Core's interruptible ``sleep_for``), injectable for tests.
    """

    def __init__(
        self,
        bridge: Proxy,
        *,
        accept_incoming: bool = True,
        private_key_file: Path | None = None,
        connect_timeout: float = 5.0,
        reply_timeout: float = REPLY_TIMEOUT,
        rng: Callable[[int], bytes] = os.urandom,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bridge = bridge
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.rng = rng
        self._sleep = sleep
        #: Core ``m_i2p_sam_session``.
        self.persistent: Session | None = (
            Session(
                bridge,
                private_key_file=private_key_file,
                connect_timeout=connect_timeout,
                reply_timeout=reply_timeout,
                rng=rng,
            )
            if accept_incoming
            else None
        )
        #: Core ``m_unused_i2p_sessions``.
        self.unused: deque[Session] = deque()
        #: Transient sessions owned by open connections (Core: ``CNode::m_i2p_sam_session``).
        self._owned: dict[int, Session] = {}
        self._accept_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        #: Our advertised address while the accept loop listens, else None.
        self.listening_as: Service | None = None

    def _transient(self) -> Session:
        return Session(
            self.bridge,
            transient=True,
            connect_timeout=self.connect_timeout,
            reply_timeout=self.reply_timeout,
            rng=self.rng,
        )

    async def connect(self, to: Service) -> tuple[socket.socket, bytes, Service, Session | None]:
        """Open a stream to ``to`` (Core ``ConnectNode``'s I2P branch; peerkeeper has no
        private-broadcast connections, the one kind Core sends through a transient
        session even when a persistent one exists).

        Returns ``(socket, stream bytes already read, our address, transient session or
        None)``; a transient session must be handed to :meth:`own` with the connection's
        id, or closed. Raises :class:`~peerkeeper.io.i2psam.I2PConnectError`.
        """
        if self.persistent is not None:
            sock, rest, me = await self.persistent.connect(to)
            return sock, rest, me, None
        session = self.unused.popleft() if self.unused else self._transient()
        try:
            sock, rest, me = await session.connect(to)
        except I2PConnectError:
            if len(self.unused) < MAX_UNUSED_I2P_SESSIONS_SIZE:
                self.unused.append(session)
            else:
                await session.close()
            raise
        except BaseException:
            await session.close()
            raise
        return sock, rest, me, session

    def own(self, conn_id: int, session: Session) -> None:
        """``session`` now lives as long as connection ``conn_id`` (see :meth:`release`)."""
        self._owned[conn_id] = session

    def release(self, conn_id: int) -> None:
        """Connection ``conn_id`` ended: destroy the transient session it owned, if any."""
        session = self._owned.pop(conn_id, None)
        if session is not None:
            task = asyncio.get_running_loop().create_task(session.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # -- the accept loop (Core ThreadI2PAcceptIncoming) -----------------------------------

    def start_accepting(
        self,
        adopt: AdoptInbound,
        add_local: Callable[[Service], None],
        remove_local: Callable[[Service], None],
    ) -> None:
        """Run the accept loop on the persistent session (nothing without one)."""
        if self.persistent is None or self._accept_task is not None:
            return
        self._accept_task = asyncio.get_running_loop().create_task(
            self._accept_loop(self.persistent, adopt, add_local, remove_local)
        )

    async def _accept_loop(
        self,
        session: Session,
        adopt: AdoptInbound,
        add_local: Callable[[Service], None],
        remove_local: Callable[[Service], None],
    ) -> None:
        backoff = AcceptBackoff()
        while True:
            try:
                sam, me = await session.listen()
            except I2PError:
                if self.listening_as is not None:
                    remove_local(self.listening_as)
                    self.listening_as = None
                await self._sleep(backoff.failed())
                continue
            except Exception:  # a bug must not end accepting for good
                log.exception("I2P listen failed")
                await self._sleep(backoff.failed())
                continue
            if self.listening_as is None:
                add_local(me)
                self.listening_as = me
            try:
                peer = await session.accept(sam)
            except I2PError:
                sam.close()
                await self._sleep(backoff.failed())
                continue
            except BaseException:
                sam.close()
                raise
            sock, rest = sam.detach()
            try:
                await adopt(sock, rest, me, peer)
            except Exception:
                log.exception("taking the I2P connection from %s failed", peer)
                sock.close()
            backoff.accepted()

    async def stop(self) -> None:
        """End the accept loop and destroy every session."""
        task, self._accept_task = self._accept_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sessions = [*self.unused, *self._owned.values()]
        if self.persistent is not None:
            sessions.append(self.persistent)
        self.unused.clear()
        self._owned.clear()
        for session in sessions:
            await session.close()
        for closing in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError):
                await closing
