"""peers.dat / anchors.dat against files written by a real Bitcoin Core 31 regtest node.

The Core files live next to the repo in ``shared/data/core_files`` (peers.dat and the
node's getrawaddrman / getaddrmaninfo / getnodeaddresses answers at the same moment).
Tests that need them skip when that directory is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.io.addrdb import (
    PeersDatError,
    dumps_anchors,
    dumps_file_db,
    dumps_peers_dat,
    loads_anchors,
    loads_peers_dat,
    read_anchors,
    read_peers_dat,
    write_anchors,
    write_peers_dat,
)
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import AddrEntry

CORE_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "core_files"
REGTEST = bytes.fromhex("fabfb5da")
MAINNET = bytes.fromhex("f9beb4d9")
NOW = 1_700_000_000

needs_core_files = pytest.mark.skipif(
    not (CORE_FILES / "peers.dat").is_file(),
    reason=f"Core reference files not found at {CORE_FILES} (shared/data is not checked out)",
)


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def _core_peers() -> bytes:
    return (CORE_FILES / "peers.dat").read_bytes()


def _core_json(name: str) -> Any:
    return json.loads((CORE_FILES / name).read_text())


def _small_addrman() -> AddrMan:
    am = AddrMan(random.Random(4))
    src = NetAddr.parse("252.2.2.2")
    am.add(
        [AddrEntry(NOW, 9, Service(NetAddr.parse(f"250.{i}.1.1"), 8333)) for i in range(1, 40)],
        src,
        now=NOW,
    )
    am.add([AddrEntry(NOW, 1033, Service(NetAddr.parse("2a01:4f8::1"), 8333))], None, now=NOW)
    am.good(Service(NetAddr.parse("250.1.1.1"), 8333), NOW)
    return am


# --- Core's real files ---------------------------------------------------------------


@needs_core_files
def test_core_peers_dat_matches_getrawaddrman() -> None:
    am = read_peers_dat(CORE_FILES / "peers.dat", REGTEST, random.Random(0))
    raw = _core_json("getrawaddrman.json")
    mine = am.raw_entries()
    assert set(mine) == {"new", "tried"}
    assert len(raw["new"]) == 62 and len(raw["tried"]) == 16
    # every entry at the same table, bucket and position, with the same fields
    for table in ("new", "tried"):
        assert set(mine[table]) == set(raw[table]), table
        for pos, entry in raw[table].items():
            assert mine[table][pos] == entry, (table, pos)
    assert am.check() == 0


@needs_core_files
def test_core_peers_dat_matches_getaddrmaninfo() -> None:
    am = read_peers_dat(CORE_FILES / "peers.dat", REGTEST, random.Random(0))
    assert am.info() == _core_json("getaddrmaninfo.json")
    assert len(am) == 78


@needs_core_files
def test_core_getnodeaddresses_entries_are_known() -> None:
    am = read_peers_dat(CORE_FILES / "peers.dat", REGTEST, random.Random(0))
    nodes = _core_json("getnodeaddresses.json")
    ours = {(str(e.service.addr), e.service.port): e for e in am.entries()}
    assert nodes
    for n in nodes:
        e = ours[(n["address"], n["port"])]
        assert (e.time, e.services, e.service.addr.get_network().rpc_name) == (
            n["time"],
            n["services"],
            n["network"],
        )
    # getnodeaddresses is GetAddr(count, 0, network) -- the same filter as ours
    sample = am.get_addr(len(nodes), 0, now=max(e.time for e in am.entries()))
    assert len(sample) == len(nodes)


@needs_core_files
def test_core_peers_dat_roundtrip_byte_for_byte() -> None:
    data = _core_peers()
    am = loads_peers_dat(data, REGTEST, random.Random(0))
    assert dumps_peers_dat(am, REGTEST) == data
    # Core's loader rules hold for what we write: reloading gives the same tables
    am2 = loads_peers_dat(dumps_peers_dat(am, REGTEST), REGTEST, random.Random(1))
    assert am2.raw_entries() == am.raw_entries()
    assert am2.key == am.key
    assert am2.check() == 0


@needs_core_files
def test_core_peers_dat_write_read(tmp_path: Path) -> None:
    am = read_peers_dat(CORE_FILES / "peers.dat", REGTEST, random.Random(0))
    out = tmp_path / "peers.dat"
    write_peers_dat(out, am, REGTEST)
    assert out.read_bytes() == _core_peers()
    assert [p.name for p in tmp_path.iterdir()] == ["peers.dat"]  # no temp file left


@needs_core_files
def test_core_peers_dat_with_asmap_rebuckets() -> None:
    """Loading with an asmap (version differs from the file's zero) re-buckets new
    entries from their own source, as Core does; nothing is lost that fits."""
    asmap = bytes.fromhex(
        "fb03ec0fb03fc0fe00fb03ec0fb03fc0fe00fb03ec0fb0fffffeffedb0ffd486e628290000400000400040"
        "990100800180040000050006001cf039"
    )
    am = loads_peers_dat(_core_peers(), REGTEST, random.Random(0), asmap=asmap)
    assert am.check() == 0
    assert 0 < len(am) <= 78
    assert am.serialize()[-32:] == _sha256d(asmap)


@needs_core_files
def test_core_peers_dat_truncated() -> None:
    data = _core_peers()
    for cut in (0, 3, 4, 10, 60, len(data) // 2, len(data) - 33, len(data) - 1):
        with pytest.raises(PeersDatError) as ei:
            loads_peers_dat(data[:cut], REGTEST, random.Random(0), name="peers.dat")
        assert ei.value.kind == "truncated", cut
        assert str(ei.value).startswith("peers.dat: truncated")


@needs_core_files
def test_core_peers_dat_bit_flips() -> None:
    data = _core_peers()
    rng = random.Random(3)
    positions = [4, 5, 40, 50, 100, len(data) // 2, len(data) - 40, len(data) - 1]
    positions += [rng.randrange(4, len(data)) for _ in range(40)]
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(PeersDatError) as ei:
            loads_peers_dat(bytes(flipped), REGTEST, random.Random(0), name="peers.dat")
        assert ei.value.kind in ("checksum", "version", "truncated"), (pos, str(ei.value))
        assert str(ei.value).startswith("peers.dat: ")


@needs_core_files
def test_core_peers_dat_wrong_magic() -> None:
    with pytest.raises(PeersDatError, match=r"wrong network magic fabfb5da \(regtest\)") as ei:
        loads_peers_dat(_core_peers(), MAINNET, random.Random(0), name="peers.dat")
    assert ei.value.kind == "magic"
    assert "expected f9beb4d9 (main)" in str(ei.value)


@needs_core_files
def test_core_peers_dat_wrong_checksum() -> None:
    data = bytearray(_core_peers())
    data[-1] ^= 0xFF
    with pytest.raises(PeersDatError, match="checksum mismatch") as ei:
        loads_peers_dat(bytes(data), REGTEST, random.Random(0), name="peers.dat")
    assert ei.value.kind == "checksum"


@needs_core_files
def test_core_peers_dat_trailing_bytes_ignored() -> None:
    """Core reads the checksum right after the data and ignores anything beyond."""
    am = loads_peers_dat(_core_peers() + b"junk", REGTEST, random.Random(0))
    assert len(am) == 78


@needs_core_files
def test_core_peers_dat_unsupported_version() -> None:
    data = bytearray(_core_peers()[:-32])
    data[5] = 32 + 5  # lowest compatible format 5
    with pytest.raises(PeersDatError, match="unsupported version") as ei:
        loads_peers_dat(dumps_file_db(bytes(data[:4]), bytes(data[4:])), REGTEST, random.Random(0))
    assert ei.value.kind == "version"


@needs_core_files
def test_read_peers_dat_names_file(tmp_path: Path) -> None:
    p = tmp_path / "peers.dat"
    p.write_bytes(_core_peers()[:100])
    with pytest.raises(PeersDatError, match=str(p)):
        read_peers_dat(p, REGTEST, random.Random(0))
    with pytest.raises(FileNotFoundError):
        read_peers_dat(tmp_path / "missing.dat", REGTEST, random.Random(0))


# --- no Core files needed -------------------------------------------------------------


def test_peers_dat_framing_and_roundtrip(tmp_path: Path) -> None:
    am = _small_addrman()
    data = dumps_peers_dat(am, REGTEST)
    assert data[:4] == REGTEST
    assert data[-32:] == _sha256d(data[:-32])
    assert data[4:-32] == am.serialize()
    p = tmp_path / "peers.dat"
    write_peers_dat(p, am, REGTEST)
    am2 = read_peers_dat(p, REGTEST, random.Random(9))
    assert am2.raw_entries() == am.raw_entries()
    assert am2.info() == am.info()


def test_peers_dat_corrupt_but_checksummed() -> None:
    """Valid checksum over bad data: reported as corrupt data, not checksum."""
    body = bytearray(_small_addrman().serialize())
    body[2:34] = bytes(32)  # null key: Core's consistency check fails
    with pytest.raises(PeersDatError, match="corrupt data") as ei:
        loads_peers_dat(dumps_file_db(REGTEST, bytes(body)), REGTEST, random.Random(0))
    assert ei.value.kind == "corrupt"


def test_write_peers_dat_replaces_atomically(tmp_path: Path) -> None:
    p = tmp_path / "peers.dat"
    p.write_bytes(b"old")
    write_peers_dat(p, _small_addrman(), REGTEST)
    assert p.read_bytes()[:4] == REGTEST
    assert sorted(os.listdir(tmp_path)) == ["peers.dat"]


def test_write_peers_dat_failure_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "peers.dat"
    target.mkdir()  # rename over a directory fails
    with pytest.raises(OSError):
        write_peers_dat(target, _small_addrman(), REGTEST)
    assert sorted(os.listdir(tmp_path)) == ["peers.dat"]


def _anchor_entries() -> list[AddrEntry]:
    return [
        AddrEntry(NOW, 1033, Service(NetAddr.parse("250.1.1.1"), 8333)),
        AddrEntry(NOW - 5, 9, Service(NetAddr.parse("2a01:4f8::2"), 18444)),
        AddrEntry(NOW, 1, Service(NetAddr(Network.TORV3, bytes(range(32))), 8333)),
    ]


def test_anchors_format() -> None:
    entries = _anchor_entries()
    data = dumps_anchors(entries[:1], REGTEST)
    # magic | count | 0x20035b60 | time | services (CompactSize 1033) | net 1, len 4, ip | port
    body = data[4:-32]
    expect = bytes.fromhex("01605b0320") + NOW.to_bytes(4, "little") + bytes.fromhex("fd0904")
    expect += bytes.fromhex("0104fa010101208d")
    assert body == expect
    assert loads_anchors(dumps_anchors(entries, REGTEST), REGTEST) == entries
    assert loads_anchors(dumps_anchors([], REGTEST), REGTEST) == []


def test_read_anchors_deletes_file(tmp_path: Path) -> None:
    p = tmp_path / "anchors.dat"
    write_anchors(p, _anchor_entries(), REGTEST)
    assert read_anchors(p, REGTEST) == _anchor_entries()
    assert not p.exists()  # Core deletes anchors.dat after reading
    assert read_anchors(p, REGTEST) == []  # missing: empty


def test_read_anchors_damaged(tmp_path: Path) -> None:
    p = tmp_path / "anchors.dat"
    data = dumps_anchors(_anchor_entries(), REGTEST)
    p.write_bytes(data[:-1])
    assert read_anchors(p, REGTEST) == []  # like Core: errors give no anchors
    assert not p.exists()
    p.write_bytes(data[:-1])
    with pytest.raises(PeersDatError, match="truncated"):
        read_anchors(p, REGTEST, strict=True)
    assert not p.exists()
    p.write_bytes(data)
    with pytest.raises(PeersDatError, match="wrong network magic"):
        read_anchors(p, MAINNET, strict=True)
    bad = bytearray(data)
    bad[10] ^= 0x40
    p.write_bytes(bytes(bad))
    with pytest.raises(PeersDatError, match="checksum mismatch"):
        read_anchors(p, REGTEST, strict=True)


def test_anchors_huge_count_fails_fast() -> None:
    data = dumps_file_db(REGTEST, bytes.fromhex("fe00000001"))  # count 0x01000000, no entries
    with pytest.raises(PeersDatError, match="truncated"):
        loads_anchors(data, REGTEST)
