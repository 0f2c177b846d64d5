"""I2P SAM sessions against a real router: Debian's ``i2pd``, on loopback, offline.

The test setup installs the package when it is missing and it can (root with apt-get),
and starts i2pd itself with its own data directory, SAM on a loopback port, NTCP2 on
another (i2pd needs one transport), and the web console, proxies, UPnP, address book
and reseeding off. Offline, i2pd answers HELLO and DEST GENERATE but cannot build
tunnels, so SESSION CREATE never answers: our reply timeout and the accept loop's
retry must hold. One i2pd serves the module; it is stopped at the end.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port, require_debian_binary, wait_until

from peerkeeper.io.i2psam import I2PConnectError, SamSocket, Session
from peerkeeper.net.i2p import HELLO, I2PError, dest_bin_to_addr, my_destination
from peerkeeper.net.netaddr import Network, Service
from peerkeeper.net.netbase import Proxy
from peerkeeper.shell.i2p import I2PSessions

pytestmark = pytest.mark.timeout(120)


class I2pd:
    """One i2pd process with SAM on 127.0.0.1."""

    def __init__(self, datadir: Path) -> None:
        binary = require_debian_binary("i2pd")
        datadir.mkdir(mode=0o700, exist_ok=True)
        self.sam_port = free_port()
        certs = Path("/usr/share/i2pd/certificates")
        args = [
            binary,
            f"--datadir={datadir}",
            "--conf=/dev/null",
            "--tunconf=/dev/null",
            f"--tunnelsdir={datadir / 'tunnels.d'}",
            *([f"--certsdir={certs}"] if certs.is_dir() else []),
            "--log=file",
            f"--logfile={datadir / 'i2pd.log'}",
            "--loglevel=info",
            "--http.enabled=0",
            "--httpproxy.enabled=0",
            "--socksproxy.enabled=0",
            "--i2pcontrol.enabled=0",
            "--upnp.enabled=0",
            "--addressbook.enabled=0",
            "--reseed.urls=https://127.0.0.1:1/",  # never the internet
            "--ssu2.enabled=0",
            "--ntcp2.enabled=1",
            "--ntcp2.published=0",
            f"--ntcp2.port={free_port()}",
            "--host=127.0.0.1",
            "--sam.enabled=1",
            "--sam.address=127.0.0.1",
            f"--sam.port={self.sam_port}",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.sam_port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"i2pd did not start (see {datadir / 'i2pd.log'})") from None
                time.sleep(0.1)

    @property
    def bridge(self) -> Proxy:
        return Proxy("127.0.0.1", self.sam_port, False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:  # i2pd lingers ~10 s over its unfinished tunnels: not waited for
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def i2pd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[I2pd]:
    """One router for the module (each test makes its own sessions)."""
    router = I2pd(tmp_path_factory.mktemp("i2pd"))
    try:
        yield router
    finally:
        router.stop()


@pytest.mark.debian("i2pd")
async def test_i2pd_says_hello_in_sam_3_1(i2pd: I2pd) -> None:
    sock = await SamSocket.open(i2pd.bridge, 5.0)
    try:
        reply = await sock.request(HELLO, timeout=10.0)
    finally:
        sock.close()
    assert reply.get("RESULT") == "OK" and reply.get("VERSION") == "3.1"


@pytest.mark.debian("i2pd")
async def test_dest_generate_keeps_the_key_and_a_silent_session_create_times_out(
    i2pd: I2pd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A persistent session asks i2pd for a destination (DEST GENERATE answers offline),
    saves it, then waits for SESSION CREATE, which an offline i2pd never answers: the
    reply timeout ends the wait with Core's text, and the key stays for the next try."""
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    key_file = tmp_path / "i2p_private_key"
    session = Session(i2pd.bridge, private_key_file=key_file, reply_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(I2PError, match="Receive timeout"):
        await session.listen()
    assert time.monotonic() - started < 10
    key = key_file.read_bytes()
    addr = dest_bin_to_addr(my_destination(key))  # a well-formed destination
    assert addr.get_network() is Network.I2P and not session.alive
    assert "Couldn't listen: Receive timeout" in caplog.text
    # The next attempt reuses the key: no second DEST GENERATE, the same file.
    with pytest.raises(I2PError, match="Receive timeout"):
        await session.listen()
    assert key_file.read_bytes() == key
    await session.close()


@pytest.mark.debian("i2pd")
async def test_the_accept_loop_keeps_retrying_while_i2pd_cannot_build_tunnels(
    i2pd: I2pd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0.01)

    async def adopt(*args: object) -> None:
        raise AssertionError("no tunnels: nobody can connect")

    added: list[Service] = []
    sessions = I2PSessions(
        i2pd.bridge,
        private_key_file=tmp_path / "i2p_private_key",
        reply_timeout=0.5,
        sleep=sleep,
    )
    sessions.start_accepting(adopt, added.append, added.remove)
    try:
        await wait_until(lambda: len(waits) >= 3, 30)
    finally:
        await sessions.stop()
    assert waits[:3] == [1.0, 2.0, 3.0] and added == []
    assert caplog.text.count("Creating persistent I2P SAM session") >= 3


@pytest.mark.debian("i2pd")
async def test_an_outbound_connect_through_a_silent_i2pd_fails_as_the_routers_fault(
    i2pd: I2pd,
) -> None:
    sessions = I2PSessions(i2pd.bridge, accept_incoming=False, reply_timeout=0.5)
    to = Service(dest_bin_to_addr(bytes(387)), 0)
    try:
        with pytest.raises(I2PConnectError) as info:
            await sessions.connect(to)
        assert info.value.proxy_failed is True  # addrman counts no attempt (Core)
        assert len(sessions.unused) == 1  # kept for the next attempt
    finally:
        await sessions.stop()
