"""Transactions and blocks as bytes: walked, hashed and counted, never validated (pure).

:func:`parse_tx` walks one serialized transaction and returns a :class:`TxInfo` (its
txid, wtxid, counts and size); :func:`parse_block` walks a block into its
:class:`BlockHeader` and one :class:`TxInfo` per transaction. No script, amount or
consensus rule is checked: this is what an application needs to name what a peer sent.

Layouts follow Bitcoin Core: ``src/primitives/transaction.h`` (``UnserializeTransaction``
with BIP144's extended format: marker 0x00, flag 0x01, one witness stack per input;
``CTransaction::ComputeHash`` over ``TX_NO_WITNESS``, ``ComputeWitnessHash`` over
``TX_WITH_WITNESS``, src/primitives/transaction.cpp) and ``src/primitives/block.h``
(``CBlockHeader``, ``CBlock``). Vector lengths are CompactSizes read as
``ReadCompactSize`` does (canonical, at most ``MAX_SIZE``, src/serialize.h).

Every malformed input raises :class:`~peerkeeper.wire.codec.DecodeError`, nothing else:
truncation, a non-canonical or oversized CompactSize, Core's "Superfluous witness
record" and "Unknown transaction optional data". A count that cannot fit in the bytes
left (each input takes at least 41 bytes, each output 9, each witness item 1, each
transaction 10) is rejected before any loop runs, so a lying count costs nothing.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

from peerkeeper.wire.codec import MAX_SIZE, DecodeError, sha256d

__all__ = [
    "BLOCK_HEADER_SIZE",
    "MIN_TX_SIZE",
    "BlockHeader",
    "TxInfo",
    "parse_tx",
    "parse_block",
]

#: Bytes in a serialized block header (``CBlockHeader``).
BLOCK_HEADER_SIZE = 80
#: Fewest bytes a transaction Core can deserialize takes: version, an empty vin, a
#: zero flag byte (read as the marker's place; no vout follows), locktime.
MIN_TX_SIZE = 10

#: Least bytes of one ``CTxIn`` (outpoint 36, empty scriptSig 1, nSequence 4) and one
#: ``CTxOut`` (nValue 8, empty scriptPubKey 1).
_MIN_TXIN_SIZE = 41
_MIN_TXOUT_SIZE = 9

_HEADER = struct.Struct("<i32s32sIII")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_sha256 = hashlib.sha256


class BlockHeader(NamedTuple):
    """An 80-byte block header (src/primitives/block.h ``CBlockHeader``).

    ``version`` (int32), ``prev_block`` and ``merkle_root`` (32 bytes, internal byte
    order), ``time`` (uint32, unix seconds), ``bits`` (uint32, compact target),
    ``nonce`` (uint32).
    """

    version: int
    prev_block: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        """The 80 serialized bytes."""
        return _HEADER.pack(*self)

    def hash(self) -> bytes:
        """The block hash: sha256d of the 80 bytes (internal byte order)."""
        return sha256d(_HEADER.pack(*self))


class TxInfo(NamedTuple):
    """What :func:`parse_tx` learns of one transaction (src/primitives/transaction.h).

    * ``txid``: 32 bytes, internal byte order: sha256d of the serialization without
      witness (Core ``CTransaction::GetHash``);
    * ``wtxid``: sha256d of the full serialization (``GetWitnessHash``); equal to
      ``txid`` when there is no witness;
    * ``version``, ``locktime``: uint32;
    * ``n_inputs``, ``n_outputs``: counts;
    * ``has_witness``: some input has a non-empty witness stack (``HasWitness``);
    * ``size``: bytes of the full serialization, as received.

    Display ids (RPC, explorers) are the reversed hex: :attr:`txid_hex`, :attr:`wtxid_hex`.
    """

    txid: bytes
    wtxid: bytes
    version: int
    n_inputs: int
    n_outputs: int
    locktime: int
    has_witness: bool
    size: int

    @property
    def txid_hex(self) -> str:
        """The txid as Core displays it (byte-reversed hex, ``uint256::GetHex``)."""
        return self.txid[::-1].hex()

    @property
    def wtxid_hex(self) -> str:
        """The wtxid as Core displays it (byte-reversed hex)."""
        return self.wtxid[::-1].hex()


_tuple_new = tuple.__new__


def _short(what: str, pos: int) -> DecodeError:
    return DecodeError(f"{what}: end of data at offset {pos}")


def _compact_size(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A CompactSize at ``pos`` as Core's ``ReadCompactSize``: (value, new pos)."""
    if pos >= end:
        raise _short("ReadCompactSize()", pos)
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        if pos + 3 > end:
            raise _short("ReadCompactSize()", pos)
        n = int(_U16.unpack_from(data, pos + 1)[0])
        if n < 0xFD:
            raise DecodeError("non-canonical ReadCompactSize()")
        pos += 3
    elif first == 0xFE:
        if pos + 5 > end:
            raise _short("ReadCompactSize()", pos)
        n = int(_U32.unpack_from(data, pos + 1)[0])
        if n < 0x10000:
            raise DecodeError("non-canonical ReadCompactSize()")
        pos += 5
    else:
        if pos + 9 > end:
            raise _short("ReadCompactSize()", pos)
        n = int(_U64.unpack_from(data, pos + 1)[0])
        if n < 0x100000000:
            raise DecodeError("non-canonical ReadCompactSize()")
        pos += 9
    if n > MAX_SIZE:
        raise DecodeError("ReadCompactSize(): size too large")
    return n, pos


def _count(data: bytes, pos: int, end: int, min_size: int, what: str) -> tuple[int, int]:
    """A vector's CompactSize length, refused at once when ``n * min_size`` bytes are not left."""
    n, pos = _compact_size(data, pos, end)
    if n * min_size > end - pos:
        raise DecodeError(f"{what}: {n} cannot fit in the {end - pos} bytes left")
    return n, pos


def _skip_inputs(data: bytes, pos: int, end: int, n: int) -> int:
    """Walk ``n`` ``CTxIn`` (outpoint, scriptSig, nSequence) from ``pos``; the end offset."""
    for _ in range(n):
        pos += 36  # prevout: hash, n
        if pos >= end:
            raise _short("tx input", pos)
        size = data[pos]
        if size < 0xFD:
            pos += 1 + size
        else:
            size, pos = _compact_size(data, pos, end)
            pos += size
        pos += 4  # nSequence
        if pos > end:
            raise _short("tx input", end)
    return pos


def _skip_outputs(data: bytes, pos: int, end: int, n: int) -> int:
    """Walk ``n`` ``CTxOut`` (nValue, scriptPubKey) from ``pos``; the end offset."""
    for _ in range(n):
        pos += 8  # nValue
        if pos >= end:
            raise _short("tx output", pos)
        size = data[pos]
        if size < 0xFD:
            pos += 1 + size
        else:
            size, pos = _compact_size(data, pos, end)
            pos += size
        if pos > end:
            raise _short("tx output", end)
    return pos


def _skip_witnesses(data: bytes, pos: int, end: int, n_inputs: int) -> tuple[bool, int]:
    """Walk one witness stack per input; (some stack is non-empty, end offset)."""
    any_items = False
    for _ in range(n_inputs):
        items, pos = _count(data, pos, end, 1, "witness items")
        if items:
            any_items = True
            for _ in range(items):
                if pos >= end:
                    raise _short("witness item", pos)
                size = data[pos]
                if size < 0xFD:
                    pos += 1 + size
                else:
                    size, pos = _compact_size(data, pos, end)
                    pos += size
                if pos > end:
                    raise _short("witness item", end)
    return any_items, pos


def parse_tx(data: bytes, pos: int = 0) -> tuple[TxInfo, int]:
    """Walk one serialized transaction starting at ``data[pos]``: (its info, the end offset).

    Reads as Core's ``UnserializeTransaction`` with ``TX_WITH_WITNESS``
    (src/primitives/transaction.h): after the version, an empty vin is BIP144's
    marker, and the next byte the flags; flags 0 leave the transaction with no
    inputs and no outputs (a legacy transaction with no inputs cannot be told
    apart), any other flags are followed by the real vin and vout; flag bit 1 means
    one witness stack per input follows, and then at least one must be non-empty
    ("Superfluous witness record"); any other flag bit is "Unknown transaction
    optional data". Bytes after the transaction are not looked at.

    The txid hashes the version, the vin and vout as received and the locktime
    (the serialization without witness); nothing is copied.

    :raises DecodeError: truncated or malformed bytes (a ``pos`` outside ``data`` too).
    """
    end = len(data)
    if pos < 0 or pos + 4 > end:
        raise _short("tx version", max(pos, end))
    start = pos
    version = int(_U32.unpack_from(data, pos)[0])
    pos += 4
    io_start = pos  # the vin's CompactSize in the serialization without witness
    n_in, pos = _count(data, pos, end, _MIN_TXIN_SIZE, "tx inputs")
    flags = 0
    n_out = 0
    if n_in == 0:
        # A dummy (the marker) or an empty vin: the flags follow.
        if pos >= end:
            raise _short("tx flags", pos)
        flags = data[pos]
        pos += 1
        if flags:
            io_start = pos
            n_in, pos = _count(data, pos, end, _MIN_TXIN_SIZE, "tx inputs")
            pos = _skip_inputs(data, pos, end, n_in)
            n_out, pos = _count(data, pos, end, _MIN_TXOUT_SIZE, "tx outputs")
            pos = _skip_outputs(data, pos, end, n_out)
        # flags == 0: vin and vout stay empty; "00 00" is also their serialization.
    else:
        pos = _skip_inputs(data, pos, end, n_in)
        n_out, pos = _count(data, pos, end, _MIN_TXOUT_SIZE, "tx outputs")
        pos = _skip_outputs(data, pos, end, n_out)
    io_end = pos
    has_witness = False
    if flags & 1:
        flags ^= 1
        has_witness, pos = _skip_witnesses(data, pos, end, n_in)
        if not has_witness:
            raise DecodeError("Superfluous witness record")
    if flags:
        raise DecodeError("Unknown transaction optional data")
    if pos + 4 > end:
        raise _short("tx locktime", pos)
    locktime = int(_U32.unpack_from(data, pos)[0])
    pos += 4
    view = memoryview(data)
    if has_witness:
        wtxid = sha256d(view[start:pos])
        h = _sha256(view[start : start + 4])
        h.update(view[io_start:io_end])
        h.update(view[pos - 4 : pos])
        txid = _sha256(h.digest()).digest()
    else:
        txid = wtxid = sha256d(view[start:pos])
    info = _tuple_new(
        TxInfo, (txid, wtxid, version, n_in, n_out, locktime, has_witness, pos - start)
    )
    return info, pos


def parse_block(data: bytes) -> tuple[BlockHeader, list[TxInfo]]:
    """Walk a serialized block (src/primitives/block.h ``CBlock``): header and transactions.

    The 80-byte :class:`BlockHeader`, a CompactSize count, then that many
    transactions read as :func:`parse_tx` reads one (with witness). Nothing is
    validated: not the merkle root, the proof of work nor the coinbase.

    :raises DecodeError: truncated or malformed bytes, or bytes after the last transaction.
    """
    header, txs, pos = parse_block_prefix(data)
    if pos != len(data):
        raise DecodeError(f"block: {len(data) - pos} bytes after the last transaction")
    return header, txs


def parse_block_prefix(data: bytes) -> tuple[BlockHeader, list[TxInfo], int]:
    """:func:`parse_block` of the block at the start of ``data``; also returns where it
    ends (Core's deserializer leaves the bytes after a message's block unread).

    :raises DecodeError: truncated or malformed bytes.
    """
    end = len(data)
    if end < BLOCK_HEADER_SIZE:
        raise _short("block header", end)
    header = _tuple_new(BlockHeader, _HEADER.unpack_from(data))
    n, pos = _count(data, BLOCK_HEADER_SIZE, end, MIN_TX_SIZE, "block transactions")
    txs: list[TxInfo] = []
    append = txs.append
    for _ in range(n):
        info, pos = parse_tx(data, pos)
        append(info)
    return header, txs, pos
