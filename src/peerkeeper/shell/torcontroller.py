"""The asyncio driver of :class:`~peerkeeper.net.torcontrol.TorControlCore`: Core's
``TorController`` thread (src/torcontrol.cpp) as one task.

It connects to Tor's control port, sends what the core decides, feeds it every reply,
and carries out what the core learns: the onion service's key is written to
``<datadir>/onion_v3_private_key`` and its address handed to ``on_service``; Tor's
SOCKS listener to ``on_proxy``. When the connection drops, ``on_service(None)`` stops
the advertisement and the task reconnects after Core's back-off (1 s, x1.5, at most
600 s, from :class:`~peerkeeper.net.torcontrol.ReconnectBackoff`); a wrong password, a
port that is not Tor or a Tor that closes mid-reply is logged and never stops the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from peerkeeper.net.netaddr import AddrError, NetAddr, Service, split_host_port
from peerkeeper.net.torcontrol import (
    DEFAULT_TOR_CONTROL_PORT,
    PRIVATE_KEY_FILE,
    OnionProxy,
    OnionServiceAdded,
    ReconnectBackoff,
    ReplyReader,
    TorControlCore,
    TorControlError,
)

log = logging.getLogger("peerkeeper.tor")

#: Seconds to wait for the TCP connect to the control port (Core's ConnectDirectly
#: uses -timeout's default, 5 s).
CONNECT_TIMEOUT = 5.0


def read_cookie(path: str) -> bytes | None:
    """The first 33 bytes of Tor's cookie file (Core reads one more than the 32 it
    needs, to tell a longer file), or ``None`` when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(33)
    except OSError:
        return None


class TorController:
    """``TorController(control, core, *, key_dir, on_service, on_proxy, sleep=asyncio.sleep)``.

    ``control`` is ``-torcontrol`` (``host[:port]``, port 9051 by default); ``core`` a
    :class:`TorControlCore` built with the cached key (:func:`load_private_key`);
    ``key_dir`` the network's datadir, or ``None`` to keep the key in memory only.
    ``on_service(service | None)`` is told the onion address to advertise (``None``
    when it is gone); ``on_proxy("host:port")`` the SOCKS listener for onion peers.
    Use :meth:`start` and :meth:`stop`. ``connects`` and ``services`` count attempts and
    ADD_ONION answers, for tests and logs.
    """

    def __init__(
        self,
        control: str,
        core: TorControlCore,
        *,
        key_dir: Path | None,
        on_service: Callable[[Service | None], None],
        on_proxy: Callable[[str], None],
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        # Core looks the name up when connecting (a host name is fine here too).
        host, port, _ = split_host_port(control, DEFAULT_TOR_CONTROL_PORT)
        self.host, self.port = host, port
        self.control = control
        self.core = core
        self.key_dir = key_dir
        self.on_service = on_service
        self.on_proxy = on_proxy
        self._sleep = sleep
        self.backoff = ReconnectBackoff()
        self.service: Service | None = None
        self.connects = 0
        self.services = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the control loop as a task (Core starts its thread in ``StartTorControl``)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the loop and the advertisement (Core ``InterruptTorControl``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._lost()

    async def _run(self) -> None:
        while True:
            log.debug("Attempting to connect to Tor control port %s", self.control)
            self.connects += 1
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError) as e:
                # Core's two warnings, word for word; the OS's reason goes to the debug log.
                log.debug("connect() to %s failed: %s", self.control, e or "timeout")
                log.warning("tor: Error connecting to address %s", self.control)
                log.warning(
                    "tor: Initiating connection to Tor control port %s failed", self.control
                )
                wait = self.backoff.failed()
                log.debug("Retrying in %.1f seconds", wait)
                await self._sleep(wait)  # type: ignore[misc]
                continue
            self.backoff.connected()
            log.debug("Successfully connected to Tor control port")
            try:
                await self._session(reader, writer)
            except (OSError, TorControlError) as e:
                log.warning("tor: Error on the control connection: %s", e)
            except Exception:  # a bug here must not end Tor control, nor the node's stop
                log.exception("tor: control connection failed")
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            log.debug("Not connected to Tor control port %s, will retry", self.control)
            self.core.disconnected()
            self._lost()
            await self._sleep(self.backoff.failed())  # type: ignore[misc]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies = ReplyReader()
        self._send(writer, self.core.connected())
        await writer.drain()
        while data := await reader.read(4096):
            for reply in replies.feed(data):
                self._send(writer, self.core.received(reply))
            for event in replies.events:
                log.debug("Received async notification %i", event.code)
            replies.events.clear()
            self._apply()
            await writer.drain()
        log.debug("End of stream")

    def _send(self, writer: asyncio.StreamWriter, commands: list[str]) -> None:
        for cmd in commands:
            writer.write(cmd.encode() + b"\r\n")

    def _apply(self) -> None:
        for outcome in self.core.poll_outcomes():
            if isinstance(outcome, OnionServiceAdded):
                self.services += 1
                self._write_key(outcome.private_key)  # Core writes it whatever the ID
                try:
                    addr = NetAddr.parse(outcome.service_id + ".onion")
                except AddrError:
                    # Core's LookupNumeric gives an invalid address, which AddLocal ignores.
                    log.warning(
                        "tor: service ID %s is not a valid onion address: not advertised",
                        outcome.service_id,
                    )
                    continue
                self.service = Service(addr, self.core.port)
                log.info(
                    "Got tor service ID %s, advertising service %s",
                    outcome.service_id,
                    self.service,
                )
                self.on_service(self.service)
            elif isinstance(outcome, OnionProxy):
                log.debug("Configuring onion proxy for %s", outcome.location)
                self.on_proxy(outcome.location)

    def _write_key(self, key: str) -> None:
        if self.key_dir is None:
            return
        path = self.key_dir / PRIVATE_KEY_FILE
        try:
            path.write_text(key)
            path.chmod(0o600)
            log.debug("Cached service private key to %s", path)
        except OSError as e:
            log.warning("tor: Error writing service private key to %s: %s", path, e)

    def _lost(self) -> None:
        if self.service is not None:
            self.service = None
            self.on_service(None)


def load_private_key(key_dir: Path | None) -> str:
    """The cached onion key from ``<key_dir>/onion_v3_private_key``, or ``""``."""
    if key_dir is None:
        return ""
    path = key_dir / PRIVATE_KEY_FILE
    try:
        key = path.read_text().strip()
    except OSError:
        return ""
    log.debug("Reading cached private key from %s", path)
    return key
