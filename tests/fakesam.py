"""A small SAM 3.1 router for tests, on loopback, as Core's p2p_i2p_sessions uses a fake one.

It answers what Core's i2p::sam::Session sends (HELLO, DEST GENERATE, SESSION CREATE,
NAMING LOOKUP, STREAM CONNECT, STREAM ACCEPT) and joins a STREAM CONNECT to a pending
STREAM ACCEPT of the destination's session, so two nodes on one router talk to each
other "over I2P". A session ends when its control socket closes. Knobs make it
misbehave: never answer SESSION CREATE, answer a request with a chosen line, close the
control sockets, send a line that is too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field

from peerkeeper.net.i2p import (
    decode_i2p_base64,
    dest_bin_to_addr,
    encode_i2p_base64,
    my_destination,
)


def make_private_key() -> bytes:
    """A private key shaped as i2pd's: a 391-byte destination (384 bytes, then a key
    certificate: type 5, length 4, signature type 7, crypto type 4) and 64 key bytes."""
    return os.urandom(384) + bytes([5, 0, 4, 0, 7, 0, 4]) + os.urandom(64)


@dataclass
class FakeSession:
    id: str
    private_key: bytes
    control: asyncio.StreamWriter
    #: STREAM ACCEPT sockets waiting for a peer: (reader, writer, released when done).
    accepting: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Future[None]]] = (
        field(default_factory=list)
    )

    @property
    def destination_b64(self) -> str:
        return encode_i2p_base64(my_destination(self.private_key))


class FakeSamRouter:
    """``async with FakeSamRouter() as router``: ``router.proxy`` is its ``host:port``."""

    def __init__(self) -> None:
        self.sessions: dict[str, FakeSession] = {}
        self.requests: list[str] = []
        self.connections = 0
        #: Request prefix -> the line to answer instead (None: never answer).
        self.answers: dict[str, str | None] = {}
        self.generated: list[bytes] = []
        #: Send the dialer's first bytes in one write with the destination line to the
        #: acceptor (``coalesce_accept``), or the acceptor's first bytes in one write with
        #: the STREAM STATUS line to the dialer (``coalesce_connect``): bytes of the
        #: stream right behind a SAM line, as a router may send them.
        self.coalesce_accept = False
        self.coalesce_connect = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def proxy(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeSamRouter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def close_controls(self) -> None:
        """The router drops every session (as when it restarts)."""
        for s in list(self.sessions.values()):
            s.control.close()
            for _, w, _ in s.accepting:
                w.close()
        self.sessions.clear()

    def send_to_acceptors(self, line: str, end: str = "\n") -> None:
        """Write ``line`` (and ``end``) to every waiting STREAM ACCEPT socket instead of a
        destination."""
        for s in self.sessions.values():
            for _, w, _ in s.accepting:
                w.write((line + end).encode())
            s.accepting.clear()

    def address_of(self, session_id: str) -> str:
        return str(dest_bin_to_addr(my_destination(self.sessions[session_id].private_key)))

    def _session_by_addr(self, name: str) -> FakeSession | None:
        for s in self.sessions.values():
            if str(dest_bin_to_addr(my_destination(s.private_key))) == name:
                return s
        return None

    def _canned(self, line: str) -> tuple[bool, str | None]:
        for prefix, answer in self.answers.items():
            if line.startswith(prefix):
                return True, answer
        return False, None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session: FakeSession | None = None
        try:
            while True:
                raw = await reader.readline()
                if not raw.endswith(b"\n"):
                    return
                line = raw.decode().rstrip("\n")
                self.requests.append(line)
                canned, answer = self._canned(line)
                if canned:
                    if answer is None:
                        await reader.read()  # never answers; waits for the client to go
                        return
                    writer.write(answer.encode() + b"\n")
                    await writer.drain()
                    continue
                words = dict(w.partition("=")[::2] for w in line.split(" ")[2:])
                if line.startswith("HELLO VERSION"):
                    reply = "HELLO REPLY RESULT=OK VERSION=3.1"
                elif line.startswith("DEST GENERATE"):
                    key = make_private_key()
                    self.generated.append(key)
                    pub = encode_i2p_base64(my_destination(key))
                    reply = f"DEST REPLY PUB={pub} PRIV={encode_i2p_base64(key)}"
                elif line.startswith("SESSION CREATE"):
                    dest = words["DESTINATION"]
                    key = make_private_key() if dest == "TRANSIENT" else decode_i2p_base64(dest)
                    session = FakeSession(words["ID"], key, writer)
                    self.sessions[session.id] = session
                    reply = f"SESSION STATUS RESULT=OK DESTINATION={encode_i2p_base64(key)}"
                elif line.startswith("NAMING LOOKUP"):
                    target = self._session_by_addr(words["NAME"])
                    reply = (
                        f"NAMING REPLY RESULT=OK NAME={words['NAME']} VALUE={target.destination_b64}"
                        if target is not None
                        else f"NAMING REPLY RESULT=KEY_NOT_FOUND NAME={words['NAME']}"
                    )
                elif line.startswith("STREAM ACCEPT"):
                    owner = self.sessions.get(words["ID"])
                    if owner is None:
                        reply = "STREAM STATUS RESULT=INVALID_ID"
                    else:
                        writer.write(b"STREAM STATUS RESULT=OK\n")
                        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                        owner.accepting.append((reader, writer, done))
                        await done  # the socket is the bridge's now (or closed with the router)
                        return
                elif line.startswith("STREAM CONNECT"):
                    mine = self.sessions.get(words["ID"])
                    target = next(
                        (
                            s
                            for s in self.sessions.values()
                            if s.destination_b64 == words["DESTINATION"] and s.accepting
                        ),
                        None,
                    )
                    if mine is None:
                        reply = "STREAM STATUS RESULT=INVALID_ID"
                    elif target is None:
                        reply = "STREAM STATUS RESULT=CANT_REACH_PEER"
                    else:
                        acc_reader, acceptor, acc_done = target.accepting.pop(0)
                        dest_line = mine.destination_b64.encode() + b"\n"
                        if self.coalesce_connect:
                            acceptor.write(dest_line)
                            first = await acc_reader.read(65536)
                            writer.write(b"STREAM STATUS RESULT=OK\n" + first)
                        elif self.coalesce_accept:
                            writer.write(b"STREAM STATUS RESULT=OK\n")
                            first = await reader.read(65536)
                            acceptor.write(dest_line + first)
                        else:
                            writer.write(b"STREAM STATUS RESULT=OK\n")
                            acceptor.write(dest_line)
                        try:
                            await self._bridge(reader, writer, acc_reader, acceptor)
                        finally:
                            if not acc_done.done():
                                acc_done.set_result(None)
                        return
                else:
                    reply = "UNKNOWN RESULT=I2P_ERROR"
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if session is not None and self.sessions.get(session.id) is session:
                del self.sessions[session.id]
                for _, w, done in session.accepting:
                    w.close()
                    if not done.done():
                        done.set_result(None)
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _bridge(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        acc_reader: asyncio.StreamReader,
        acceptor: asyncio.StreamWriter,
    ) -> None:
        """Carry bytes both ways between the connecting socket and the accepting one."""

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, acceptor), pipe(acc_reader, writer))
