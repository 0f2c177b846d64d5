"""Every file format on disk: Bitcoin Core's address database files (src/addrdb.h,
src/addrdb.cpp) and the other files the node reads and writes.

* peers.dat and anchors.dat (Core ``DumpPeerAddresses`` / ``LoadAddrman``,
  ``DumpAnchors`` / ``ReadAnchors``), below;
* banlist.json (Core ``CBanDB``): :func:`read_banlist_json`, :func:`write_banlist_json`,
  :func:`load_banlist`; the encoding is :mod:`peerkeeper.bitcoin.banman`'s;
* identity.json (Octez ``Node_identity_file``): :func:`load_identity`,
  :func:`save_identity`, :func:`load_or_create_identity`; the encoding is
  :mod:`peerkeeper.native.identity`'s;
* the ``-asmap`` file (Core ``DecodeAsmap``, src/util/asmap.cpp): :func:`load_asmap`;
* a fixed-seed list ``nodes_*.txt`` (Core contrib/seeds): :func:`load_fixed_seeds`;
* Floresta's peers.json: :func:`dumps_peers_json`, :func:`write_peers_json`.

The pure modules encode and decode; this module reads and writes files, and every
write here is atomic (:func:`atomic_write`).  A damaged file is refused with an error
naming it, and nothing in memory changes.

peers.dat and anchors.dat use Core's ``SerializeFileDB`` framing::

    magic (4 bytes, the chain's message start) | payload | sha256d(magic | payload) (32 bytes)

* peers.dat: the payload is the AddrMan body (:meth:`peerkeeper.bitcoin.addrman.AddrMan.serialize`).
* anchors.dat: the payload is a ``std::vector<CAddress>`` in ``V2_DISK`` format (a
  CompactSize count, then each address with its disk version, time, CompactSize
  services, BIP155 address and big-endian port).

:func:`dumps_file_db`, :func:`loads_peers_dat` and :func:`loads_anchors` are pure (bytes
in, bytes out).  The ``read_*``/``write_*`` functions add the file I/O: writes go to a
temporary file in the same directory, are flushed and fsynced, then renamed over the
target (Core ``SerializeFileDB``: write ``peers.XXXX``, ``FileCommit``, ``RenameOver``).

Errors in peers.dat raise :class:`PeersDatError`, whose message names the file and the
problem: truncated, wrong network magic, checksum mismatch, unsupported version or
corrupt data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from peerkeeper.bitcoin.addrman import (
    AddrMan,
    AddrManFormatError,
    AddrManVersionError,
    read_caddress_disk,
    ser_caddress_v2_disk,
)
from peerkeeper.bitcoin.banman import (
    BanEntry,
    BanlistError,
    BanMan,
    banlist_json_text,
    loads_banlist_json,
    parse_banlist_json,
)
from peerkeeper.bitcoin.seeds import parse_fixed_seeds
from peerkeeper.native.identity import (
    MAX_IDENTITY_FILE_SIZE,
    Identity,
    IdentityError,
    dumps_identity,
    loads_identity,
    pow_target,
)
from peerkeeper.net.asmap import AsmapError, check_standard_asmap
from peerkeeper.net.chains import CHAINS
from peerkeeper.net.netaddr import AddrError, NetAddr, Network, Service, SubNet
from peerkeeper.wire.codec import DecodeError, Reader, ser_compact_size
from peerkeeper.wire.messages import AddrEntry

__all__ = [
    "PeersDatError",
    "dumps_anchors",
    "dumps_file_db",
    "dumps_peers_dat",
    "loads_anchors",
    "loads_peers_dat",
    "read_anchors",
    "read_peers_dat",
    "write_anchors",
    "write_peers_dat",
    "dumps_peers_json",
    "write_peers_json",
    "atomic_write",
    "load_asmap",
    "load_banlist",
    "load_fixed_seeds",
    "read_block_headers",
    "append_header",
    "load_identity",
    "load_or_create_identity",
    "read_banlist_json",
    "save_identity",
    "write_banlist_json",
]

_CHECKSUM_SIZE = 32
_MAGIC_SIZE = 4
#: Smallest V2 disk CAddress: version, time, services, net id, length, port.
_MIN_CADDRESS_V2 = 4 + 4 + 1 + 1 + 1 + 2


class PeersDatError(ValueError):
    """A peers.dat / anchors.dat file could not be loaded.

    The message names the file and the problem.  ``kind`` is one of ``"truncated"``,
    ``"magic"``, ``"checksum"``, ``"version"`` (Core's ``InvalidAddrManVersionError``:
    Core moves such a file aside to ``peers.dat.bak`` and starts empty) or ``"corrupt"``.
    """

    def __init__(self, name: str, kind: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.kind = kind


def _sha256d(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _magic_name(magic: bytes) -> str:
    for chain in CHAINS.values():
        if chain.magic == magic:
            return f"{magic.hex()} ({chain.name})"
    return magic.hex()


def dumps_file_db(magic: bytes, payload: bytes) -> bytes:
    """Core ``SerializeDB`` (src/addrdb.cpp): ``magic | payload | sha256d(magic | payload)``."""
    if len(magic) != _MAGIC_SIZE:
        raise ValueError("network magic must be 4 bytes")
    head = magic + payload
    return head + _sha256d(head)


def _check_head(data: bytes, magic: bytes, name: str) -> None:
    if len(data) < _MAGIC_SIZE:
        raise PeersDatError(
            name, "truncated", f"truncated: {len(data)} bytes, shorter than the network magic"
        )
    if data[:_MAGIC_SIZE] != magic:
        raise PeersDatError(
            name,
            "magic",
            f"wrong network magic {_magic_name(data[:_MAGIC_SIZE])}, expected "
            f"{_magic_name(magic)} (Core: Invalid network magic number)",
        )


def _check_tail(data: bytes, end: int, name: str) -> None:
    """The 32-byte checksum right after the payload (Core ``DeserializeDB`` reads it from
    the stream right after the data, ignoring anything beyond)."""
    stored = data[end : end + _CHECKSUM_SIZE]
    if len(stored) < _CHECKSUM_SIZE:
        raise PeersDatError(
            name,
            "truncated",
            f"truncated: checksum missing ({len(stored)} of {_CHECKSUM_SIZE} bytes after the "
            f"data at offset {end})",
        )
    if stored != _sha256d(memoryview(data)[:end]):
        raise PeersDatError(name, "checksum", "checksum mismatch, data corrupted")


def _whole_file_checksum_ok(data: bytes) -> bool:
    if len(data) < _MAGIC_SIZE + _CHECKSUM_SIZE:
        return False
    return _sha256d(memoryview(data)[:-_CHECKSUM_SIZE]) == data[-_CHECKSUM_SIZE:]


def _damaged(data: bytes, name: str, e: Exception) -> PeersDatError:
    """A parse error: reported as a checksum mismatch when the file's trailing checksum
    does not match either (the bytes were damaged), else as corrupt data."""
    if not _whole_file_checksum_ok(data):
        return PeersDatError(name, "checksum", f"checksum mismatch, data corrupted ({e})")
    return PeersDatError(name, "corrupt", f"corrupt data: {e}")


def dumps_peers_dat(addrman: AddrMan, magic: bytes) -> bytes:
    """The bytes of a peers.dat for ``addrman`` (Core ``DumpPeerAddresses``)."""
    return dumps_file_db(magic, addrman.serialize())


def loads_peers_dat(
    data: bytes,
    magic: bytes,
    rng: random.Random,
    *,
    name: str = "peers.dat",
    asmap: bytes | None = None,
) -> AddrMan:
    """Load an AddrMan from peers.dat bytes (Core ``DeserializeDB`` + ``LoadAddrman``).

    Checks the magic, parses the AddrMan body (Core's ``Unserialize`` rules, see
    :meth:`AddrMan.deserialize`), then checks the sha256d checksum that follows it.

    Raises:
        PeersDatError: ``name`` and the problem (kind truncated, magic, checksum,
            version or corrupt).  When the body does not parse and the file's last 32
            bytes are not a valid checksum, the file is reported damaged (checksum
            mismatch or truncated) rather than by the parse error.
    """
    data = bytes(data)
    _check_head(data, magic, name)
    r = Reader(data)
    r.skip(_MAGIC_SIZE)
    try:
        addrman = AddrMan._unserialize(r, rng, asmap=asmap)
    except AddrManFormatError as e:
        if isinstance(e, AddrManVersionError):
            raise PeersDatError(name, "version", f"unsupported version: {e}") from e
        if e.truncated:
            raise PeersDatError(name, "truncated", f"truncated: {e}") from e
        if not _whole_file_checksum_ok(data):
            raise PeersDatError(name, "checksum", f"checksum mismatch, data corrupted ({e})") from e
        raise PeersDatError(name, "corrupt", f"corrupt data: {e}") from e
    _check_tail(data, r.pos, name)
    return addrman


def read_peers_dat(
    path: str | os.PathLike[str],
    magic: bytes,
    rng: random.Random,
    *,
    asmap: bytes | None = None,
) -> AddrMan:
    """Read peers.dat at ``path`` (Core ``LoadAddrman``).

    Raises:
        FileNotFoundError: no such file (Core then starts with an empty AddrMan and
            writes a new file).
        PeersDatError: the file is damaged or of another network/version; the message
            names the file.
    """
    p = Path(path)
    data = p.read_bytes()
    return loads_peers_dat(data, magic, rng, name=str(p), asmap=asmap)


def atomic_write(path: Path, data: bytes) -> None:
    """Core ``SerializeFileDB``: write a temporary file in the same directory, flush and
    fsync it, then rename it over ``path``.  The temporary file is removed on failure."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        with contextlib.suppress(OSError):
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def write_peers_dat(path: str | os.PathLike[str], addrman: AddrMan, magic: bytes) -> None:
    """Write peers.dat atomically (Core ``DumpPeerAddresses`` / ``SerializeFileDB``).

    Raises:
        OSError: the file could not be written (the previous file is left intact).
    """
    atomic_write(Path(path), dumps_peers_dat(addrman, magic))


def dumps_anchors(entries: Iterable[AddrEntry], magic: bytes) -> bytes:
    """anchors.dat bytes (Core ``DumpAnchors``): ``V2_DISK`` vector of ``CAddress``."""
    items = [ser_caddress_v2_disk(e) for e in entries]
    return dumps_file_db(magic, ser_compact_size(len(items)) + b"".join(items))


def loads_anchors(data: bytes, magic: bytes, *, name: str = "anchors.dat") -> list[AddrEntry]:
    """Parse anchors.dat bytes.

    Raises:
        PeersDatError: truncated, wrong magic, corrupt entries or checksum mismatch.
    """
    data = bytes(data)
    _check_head(data, magic, name)
    r = Reader(data)
    r.skip(_MAGIC_SIZE)
    out: list[AddrEntry] = []
    try:
        n = r.compact_size()
        if n * _MIN_CADDRESS_V2 > r.remaining():
            raise PeersDatError(
                name,
                "truncated",
                f"truncated: {n} addresses cannot fit in {r.remaining()} bytes",
            )
        for _ in range(n):
            out.append(read_caddress_disk(r, v2=True))
    except DecodeError as e:
        if str(e).startswith("short read"):
            raise PeersDatError(name, "truncated", f"truncated: {e}") from e
        raise _damaged(data, name, e) from e
    except (AddrManFormatError, AddrError) as e:
        raise _damaged(data, name, e) from e
    _check_tail(data, r.pos, name)
    return out


def read_anchors(
    path: str | os.PathLike[str], magic: bytes, *, strict: bool = False
) -> list[AddrEntry]:
    """Read anchors.dat, then delete it (Core ``ReadAnchors``, src/addrdb.cpp).

    Core deletes the file after reading on purpose: after an unclean shutdown the node
    must not keep re-connecting to the same anchors (which an attacker could exploit).
    Like Core, a missing or damaged file yields ``[]`` (and is still deleted), unless
    ``strict`` is set, in which case a damaged file raises :class:`PeersDatError` (after
    deletion).  Entries are returned as stored; Core keeps at most 2
    (``MAX_BLOCK_RELAY_ONLY_ANCHORS``) itself.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        with contextlib.suppress(OSError):
            p.unlink()
        if strict:
            raise PeersDatError(str(p), "corrupt", f"cannot read: {e}") from e
        return []
    try:
        return loads_anchors(data, magic, name=str(p))
    except PeersDatError:
        if strict:
            raise
        return []
    finally:
        with contextlib.suppress(OSError):
            p.unlink()


def write_anchors(path: str | os.PathLike[str], entries: Iterable[AddrEntry], magic: bytes) -> None:
    """Write anchors.dat atomically (Core ``DumpAnchors``)."""
    atomic_write(Path(path), dumps_anchors(entries, magic))


# -- Floresta's peers.json -------------------------------------------------------------------


def _floresta_address(addr: NetAddr) -> dict[str, Any]:
    """Floresta's serde ``Address`` enum, externally tagged (floresta-wire address_man.rs)."""
    net = addr.network
    if net is Network.IPV4:
        return {"V4": str(addr)}
    if net is Network.IPV6:
        return {"V6": str(addr)}
    if net is Network.CJDNS:
        return {"Cjdns": str(addr)}
    if net is Network.I2P:
        return {"I2p": list(addr.addr)}
    if net is Network.TORV3:
        return {"OnionV3": list(addr.addr)}
    raise ValueError(f"{net.name} has no Floresta form")


def dumps_peers_json(addrman: AddrMan, now: float) -> str:
    """Every address as Floresta's ``DiskLocalAddress`` list (its ``dump_peers`` peers.json).

    Each item: ``address`` (``{"V4": "1.2.3.4"}``, ``{"V6": ...}``, ``{"Cjdns": ...}``,
    ``{"I2p": [32 bytes]}``, ``{"OnionV3": [32 bytes]}``), ``last_connected`` (unix
    seconds of the last success), ``state`` (``"NeverTried"``, ``{"Tried": t}``,
    ``{"Failed": t}``, ``{"Banned": t}``; Floresta writes ``Connected`` as ``Tried``),
    ``services``, ``port``, ``id``. Source: floresta-wire/src/p2p_wire/address_man.rs.
    """
    out: list[dict[str, Any]] = []
    for n, entry in enumerate(addrman.entries()):
        service = entry.service
        info = addrman.find(service)
        last_success = info.last_success if info is not None else 0
        state = addrman.state(service, now)
        kind = state.kind.name
        if kind == "NEVER_TRIED":
            st: Any = "NeverTried"
        elif kind in ("TRIED", "CONNECTED"):
            st = {"Tried": int(state.time if state.time is not None else last_success)}
        elif kind == "FAILED":
            st = {"Failed": int(state.time or 0)}
        else:
            st = {"Banned": int(state.time or 0)}
        out.append(
            {
                "address": _floresta_address(service.addr),
                "last_connected": int(last_success),
                "state": st,
                "services": int(entry.services),
                "port": int(service.port),
                "id": n,
            }
        )
    return json.dumps(out)


def write_peers_json(path: str | os.PathLike[str], addrman: AddrMan, now: float) -> None:
    """Write :func:`dumps_peers_json` atomically to ``path``."""
    atomic_write(Path(path), dumps_peers_json(addrman, now).encode())


# -- banlist.json (Core CBanDB, src/addrdb.h / src/addrdb.cpp) ------------------------------


def _read_banlist_bytes(p: Path) -> bytes:
    """The file's bytes; Core's ``CBanDB::Read`` returns false for a missing file
    (src/addrdb.cpp) and ``ReadSettings`` errors on one it cannot open."""
    try:
        return p.read_bytes()
    except FileNotFoundError as e:
        raise BanlistError(f"Cannot load banlist {p}: file does not exist") from e
    except OSError as e:
        raise BanlistError(f"Cannot load banlist {p}: {p}. Please check permissions. ({e})") from e


def read_banlist_json(
    path: str | os.PathLike[str], now: float, *, cjdns: bool = False
) -> dict[SubNet, BanEntry]:
    """Read a Core banlist.json: Core ``CBanDB::Read`` (src/addrdb.cpp) followed by the
    ``SweepBanned`` of ``BanMan::LoadBanlist`` (src/banman.cpp); the decoding is
    :func:`peerkeeper.bitcoin.banman.loads_banlist_json`.

    Args:
        path: the file.
        now: current unix time (seconds); bans with ``now > banned_until`` are dropped.
        cjdns: whether CJDNS is reachable (see
            :func:`peerkeeper.bitcoin.banman.banmap_from_json`).

    Returns:
        The bans, in Core's map order.

    Raises:
        BanlistError: the file is missing or unreadable, not valid JSON, not an object,
            has a duplicate top-level key, lacks ``banned_nets``, or holds an entry Core
            cannot parse as a whole.  Core treats each of these as "start with an empty
            ban list".
    """
    p = Path(path)
    return loads_banlist_json(_read_banlist_bytes(p), now, cjdns=cjdns, source=str(p))


def load_banlist(
    banman: BanMan, path: str | os.PathLike[str], now: float, *, cjdns: bool = False
) -> None:
    """Replace ``banman``'s bans with those of a Core banlist.json file: Core
    ``BanMan::LoadBanlist`` (src/banman.cpp) with ``CBanDB::Read`` (src/addrdb.cpp),
    through :meth:`~peerkeeper.bitcoin.banman.BanMan.load_json`.  ``banman`` is dirty
    afterwards only if expired bans (``now`` is unix seconds) were swept.

    Raises:
        BanlistError: as :func:`read_banlist_json`; the bans are then unchanged.
    """
    p = Path(path)
    settings = parse_banlist_json(_read_banlist_bytes(p), source=str(p))
    banman.load_json(settings, now, cjdns=cjdns, source=str(p))


def write_banlist_json(
    path: str | os.PathLike[str],
    bans: Mapping[SubNet, BanEntry],
    *,
    client_name: str = "Bitcoin Core",
) -> None:
    """Write ``bans`` as a Core banlist.json (Core ``CBanDB::Write``, src/addrdb.cpp), byte
    for byte what Core writes (:func:`peerkeeper.bitcoin.banman.banlist_json_text`),
    atomically (:func:`atomic_write`).  (Core's ``WriteSettings`` writes in place; the
    atomic rename is this project's choice.)

    Raises:
        OSError: the file could not be written; ``path`` is then unchanged.
    """
    data = banlist_json_text(bans, client_name=client_name).encode("utf-8")
    atomic_write(Path(path), data)


# -- identity.json (Octez src/bin_node/node_identity_file.ml) -------------------------------


def save_identity(identity: Identity, path: str | os.PathLike[str]) -> None:
    """Write ``identity`` to ``path`` as Octez's identity.json
    (:func:`peerkeeper.native.identity.dumps_identity`), atomically: a temporary file
    created with mode 0600 in the same directory, fsynced, then ``os.replace``d over
    ``path`` (:func:`atomic_write`). The result has mode 0600. Unlike Octez's
    ``Node_identity_file.write`` this replaces an existing file; callers that must not
    overwrite use :func:`load_or_create_identity`.

    Raises:
        OSError: the file could not be written (no temporary file is left behind and
            any previous file is intact).
    """
    atomic_write(Path(path), dumps_identity(identity))


def load_identity(path: str | os.PathLike[str], expected_pow: float | None = None) -> Identity:
    """Read an identity file (Octez ``Node_identity_file.read ?expected_pow``); the checks
    are :func:`peerkeeper.native.identity.loads_identity`'s (``expected_pow`` in bits).
    At most :data:`~peerkeeper.native.identity.MAX_IDENTITY_FILE_SIZE` + 1 bytes are
    read.  The file is never modified.

    Raises:
        IdentityError: naming the file and the problem: missing or unreadable, too
            large, bad JSON, bad field, mismatch, or insufficient proof of work.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_IDENTITY_FILE_SIZE + 1)
    except OSError as e:
        raise IdentityError(f"{p}: cannot read the identity file: {e.strerror or e}") from None
    try:
        return loads_identity(data, expected_pow)
    except IdentityError as e:
        raise IdentityError(f"{p}: {e}") from None


def load_or_create_identity(path: str | os.PathLike[str], difficulty: float) -> Identity:
    """The identity stored at ``path``, or a new one of ``difficulty`` bits (a fresh
    Ed25519 key and a stamp mined from :class:`random.SystemRandom`) that is then saved
    there (mode 0600, atomically) if no file exists.

    An existing file is never overwritten (Octez ``Node_identity_file.generate`` refuses
    ``Existent_identity_file``): a corrupt or inconsistent file, or one whose stamp is
    below ``difficulty`` (Octez ``Insufficient_proof_of_work``, the node refuses to
    start), raises :class:`~peerkeeper.native.identity.IdentityError` naming the file
    (see :func:`load_identity`).

    Raises:
        IdentityError: as above, or ``difficulty`` is NaN or outside 0..256 bits.
        OSError: the new file cannot be written.
    """
    p = Path(path)
    if not os.path.lexists(p):
        pow_target(difficulty)  # validate before generating a key
        identity = Identity.generate(difficulty, random.SystemRandom())
        save_identity(identity, p)
        return identity
    return load_identity(p, expected_pow=difficulty)


# -- the -asmap file (Core src/util/asmap.cpp DecodeAsmap) ----------------------------------


def load_asmap(path: str | os.PathLike[str]) -> bytes:
    """Read and check an asmap file, like Core ``DecodeAsmap`` for ``-asmap=<file>``
    (src/util/asmap.cpp); the check is
    :func:`peerkeeper.net.asmap.check_standard_asmap`.

    Unlike Core (which logs and continues without an asmap) this raises, so the caller
    decides.

    Returns:
        The raw asmap bytes.

    Raises:
        AsmapError: the file cannot be read, or fails the sanity check.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise AsmapError(f"failed to open asmap file {os.fspath(path)!r}: {e}") from e
    if not check_standard_asmap(data):
        raise AsmapError(f"sanity check of asmap file {os.fspath(path)!r} failed")
    return data


# -- fixed seeds (Core contrib/seeds/nodes_*.txt) ------------------------------------------


def load_fixed_seeds(path: str | os.PathLike[str], default_port: int = 0) -> list[Service]:
    """Read a ``nodes_*.txt`` fixed-seed file (UTF-8, Core contrib/seeds) with
    :func:`peerkeeper.bitcoin.seeds.parse_fixed_seeds`; ``default_port`` (0..65535) is
    given to lines without a port.

    Returns:
        The endpoints in file order.

    Raises:
        SeedFileError: the file is not UTF-8 (``lineno`` is where the bad byte is) or a
            line is malformed.
        OSError: the file cannot be read.
    """
    name = os.fspath(path)
    return parse_fixed_seeds(Path(name).read_bytes(), default_port, source=name)


#: The file where peerkeeper keeps the headers it mined or was given (``submitblock``),
#: 80 bytes each, after whatever ``blocks/`` holds.
HEADERS_FILE = "peerkeeper-headers.dat"


def _xor(data: bytes, key: bytes, offset: int) -> bytes:
    """Undo Core's block-file obfuscation of ``data`` read at file ``offset``."""
    if not any(key):
        return data
    pad = bytes(key[(offset + k) % 8] for k in range(len(data)))
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def read_block_headers(chain_datadir: Path, magic: bytes, *, core_blocks: bool) -> list[bytes]:
    """The 80-byte headers in order: with ``core_blocks``, first those of Bitcoin Core's
    block files in ``<chain_datadir>/blocks`` (``blk*.dat``: records ``magic || size
    (u32 LE) || block``, XOR-obfuscated with the 8-byte key in ``xor.dat``,
    src/node/blockstorage.cpp; only each record's header is read), then those of
    :data:`HEADERS_FILE`. A record with another magic, or a truncated one, ends that
    file (Core's own reader stops there too). Raises ``OSError`` for an unreadable
    file."""
    headers: list[bytes] = []
    blocks = chain_datadir / "blocks"
    if core_blocks and blocks.is_dir():
        key_path = blocks / "xor.dat"
        key = (key_path.read_bytes()[:8] if key_path.exists() else b"").ljust(8, b"\0")
        for blk in sorted(blocks.glob("blk[0-9][0-9][0-9][0-9][0-9].dat")):
            size_of_file = blk.stat().st_size
            with blk.open("rb") as f:
                pos = 0
                while pos + 88 <= size_of_file:
                    f.seek(pos)
                    head = _xor(f.read(88), key, pos)
                    size = int.from_bytes(head[4:8], "little")
                    if head[:4] != magic or size < 80 or pos + 8 + size > size_of_file:
                        break
                    headers.append(head[8:88])
                    pos += 8 + size
    extra = chain_datadir / HEADERS_FILE
    if extra.exists():
        data = extra.read_bytes()
        headers += [data[i : i + 80] for i in range(0, len(data) - len(data) % 80, 80)]
    return headers


def append_header(chain_datadir: Path, header: bytes) -> None:
    """Append one 80-byte header to :data:`HEADERS_FILE` (fsync'd: a header the node
    reported as its tip is not lost by a crash)."""
    with (chain_datadir / HEADERS_FILE).open("ab") as f:
        f.write(header[:80])
        f.flush()
        os.fsync(f.fileno())
