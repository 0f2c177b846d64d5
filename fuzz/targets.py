"""The fuzz targets: one decoder each, and the errors it is documented to raise.

``TARGETS[name] = Target(run, allowed, seeds, slow)``: ``run(data)`` feeds the bytes to
the decoder; an exception not in ``allowed`` is a finding. ``seeds()`` gives the seed
corpus. ``slow`` targets (a BIP324 handshake per input, file readers) are expected to
run at a fraction of the fast ones' speed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peerkeeper.bitcoin.addrman import AddrMan, AddrManFormatError
from peerkeeper.bitcoin.banman import BanlistError, loads_banlist_json
from peerkeeper.daemon.args import ArgsError, ArgsManager
from peerkeeper.daemon.peerkeeperd import arg_specs
from peerkeeper.dispatch.dispatcher import Envelope
from peerkeeper.io.addrdb import (
    PeersDatError,
    dumps_anchors,
    dumps_peers_dat,
    loads_anchors,
    loads_peers_dat,
)
from peerkeeper.native.messages import NATIVE_MESSAGES, decode_native
from peerkeeper.net.netaddr import AddrError, NetAddr, Service
from peerkeeper.wire.codec import DecodeError
from peerkeeper.wire.messages import MESSAGE_TYPES, AddrEntry, decode_message
from peerkeeper.wire.v1 import TransportError, V1Transport
from peerkeeper.wire.v2 import V2Transport

__all__ = ["TARGETS", "Target"]

REGTEST = bytes.fromhex("fabfb5da")
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


@dataclass(frozen=True)
class Target:
    """One fuzz target (see the module docstring)."""

    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    slow: bool = False


def _transcript_messages() -> dict[str, list[bytes]]:
    """Payloads of the messages in the recorded Core transcripts, by command."""
    out: dict[str, list[bytes]] = {}
    for path in sorted(DATA.glob("core_*_v1.json")):
        doc = json.loads(path.read_text())
        for key in ("sent_by_us", "sent_by_core"):
            t = V1Transport(bytes.fromhex(doc["magic"]))
            t.receive_data(bytes.fromhex(doc.get(key, "")))
            while True:
                try:
                    raw = t.next_message()
                except TransportError:
                    break
                if raw is None:
                    break
                out.setdefault(raw.command, []).append(raw.payload)
    return out


def _transcript_streams() -> list[bytes]:
    streams = []
    for path in sorted(DATA.glob("core_*_v1.json")):
        doc = json.loads(path.read_text())
        streams += [bytes.fromhex(doc[k]) for k in ("sent_by_us", "sent_by_core") if k in doc]
    return streams


# -- message bodies ---------------------------------------------------------------------------


def _message_target(command: str) -> Target:
    def run(data: bytes) -> None:
        msg = decode_message(command, data)
        msg.encode()  # whatever decodes must encode again

    def seeds() -> list[bytes]:
        return _transcript_messages().get(command, []) or [b""]

    return Target(run, (DecodeError,), seeds)


# -- transports ---------------------------------------------------------------------------------


def _v1(data: bytes) -> None:
    t = V1Transport(REGTEST)
    # Two pieces: framing must not depend on where a read ends.
    cut = data[0] % (len(data) + 1) if data else 0
    for piece in (data[:cut], data[cut:]):
        t.receive_data(piece)
        while t.next_message() is not None:
            pass


def _v2_plain(data: bytes) -> None:
    # A responder that detects v1 or reads a BIP324 key, garbage and a terminator.
    t = V2Transport(REGTEST, initiating=False, rng=random.Random(1).randbytes)
    t.receive_data(data)
    while t.next_message() is not None:
        pass


def _handshaken() -> tuple[V2Transport, V2Transport]:
    a = V2Transport(REGTEST, initiating=True, rng=random.Random(1).randbytes)
    b = V2Transport(REGTEST, initiating=False, rng=random.Random(2).randbytes)
    while True:
        ab, ba = a.data_to_send(), b.data_to_send()
        if not ab and not ba:
            return a, b
        b.receive_data(ab)
        a.receive_data(ba)


def _v2_after_handshake(data: bytes) -> None:
    """Packets whose contents are the fuzzer's, properly encrypted: the receiver's
    decoding of short ids, message types, lengths and the ignore bit is what runs."""
    a, b = _handshaken()
    cipher = a._cipher
    pos = 0
    while pos < len(data):
        n = data[pos] % 64
        ignore = bool(data[pos] & 0x80)
        contents = data[pos + 1 : pos + 1 + n]
        pos += 1 + n
        b.receive_data(cipher.encrypt(contents, ignore=ignore))
        while b.next_message() is not None:
            pass


# -- addresses ----------------------------------------------------------------------------------


def _bip155(data: bytes) -> None:
    if data:
        NetAddr.from_bip155(data[0], data[1:])


def _service_text(data: bytes) -> None:
    Service.parse(data.decode("utf-8", "replace"), 8333)


# -- files --------------------------------------------------------------------------------------


def _peers_dat(data: bytes) -> None:
    loads_peers_dat(data, REGTEST, random.Random(1))


def _peers_dat_seeds() -> list[bytes]:
    book = AddrMan(random.Random(1), deterministic=True)
    now = 1_800_000_000
    book.add(
        [AddrEntry(now - 100, 9, Service.parse(f"1.2.{i}.4", 8333)) for i in range(20)],
        NetAddr.parse("5.6.7.8"),
        now=now,
    )
    return [dumps_peers_dat(book, REGTEST)]


def _anchors(data: bytes) -> None:
    loads_anchors(data, REGTEST)


def _banlist(data: bytes) -> None:
    loads_banlist_json(data, 1_800_000_000)


_BANLIST_SEED = json.dumps(
    {
        "banned_nets": [
            {"version": 1, "ban_created": 1, "banned_until": 2_000_000_000, "address": "1.2.3.0/24"}
        ]
    }
).encode()


def _conf(data: bytes) -> None:
    ArgsManager(arg_specs()).read_config_text(data.decode("utf-8", "replace"), "fuzz.conf")


# -- the native protocol and dispatch -------------------------------------------------------------

_NATIVE = sorted(NATIVE_MESSAGES)


def _native(data: bytes) -> None:
    if data:
        decode_native(_NATIVE[data[0] % len(_NATIVE)], data[1:])


def _envelope(data: bytes) -> None:
    Envelope.decode(data).encode()


TARGETS: dict[str, Target] = {
    **{f"msg-{c}": _message_target(c) for c in sorted(MESSAGE_TYPES)},
    "v1": Target(_v1, (TransportError,), _transcript_streams),
    "v2-plain": Target(_v2_plain, (TransportError,), lambda: [bytes(64), *_transcript_streams()]),
    "v2-after-handshake": Target(
        _v2_after_handshake, (TransportError,), lambda: [b"\x05abcde"], True
    ),
    "bip155": Target(_bip155, (AddrError, DecodeError), lambda: [b"\x01\x01\x02\x03\x04"]),
    "service-text": Target(_service_text, (AddrError,), lambda: [b"1.2.3.4:8333", b"[::1]:1"]),
    "peers-dat": Target(_peers_dat, (PeersDatError, AddrManFormatError), _peers_dat_seeds, True),
    "anchors-dat": Target(
        _anchors,
        (PeersDatError,),
        lambda: [dumps_anchors([AddrEntry(1, 9, Service.parse("1.2.3.4:8333", 0))], REGTEST)],
        True,
    ),
    "banlist-json": Target(_banlist, (BanlistError,), lambda: [_BANLIST_SEED], True),
    "bitcoin-conf": Target(_conf, (ArgsError,), lambda: [b"[regtest]\nport=1\nconnect=0\n"], True),
    "native": Target(_native, (DecodeError,), lambda: [b"\x00"]),
    "envelope": Target(_envelope, (DecodeError,), lambda: [b"\x00"]),
}
