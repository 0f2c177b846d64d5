"""Primitive encodings of the Bitcoin wire format (pure, no I/O).

CompactSize, length-prefixed byte strings, fixed little-endian integers, and a
bounded :class:`Reader` that raises a single error type, :class:`DecodeError`, on
any short, oversized or non-canonical field.

Rules follow Bitcoin Core ``src/serialize.h``: ``ReadCompactSize`` rejects
non-canonical encodings ("non-canonical ReadCompactSize()") and sizes above
``MAX_SIZE`` (0x02000000); ``LIMITED_STRING`` rejects strings longer than its limit.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = [
    "MAX_SIZE",
    "DecodeError",
    "LimitExceeded",
    "Reader",
    "ser_compact_size",
    "ser_var_bytes",
    "ser_var_str",
    "sha256d",
    "checksum",
]

#: Largest size any length prefix may declare (src/serialize.h ``MAX_SIZE``).
MAX_SIZE = 0x02000000

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U16BE = struct.Struct(">H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")


class DecodeError(ValueError):
    """A payload could not be decoded: a field is short, oversized or non-canonical.

    The one error type every decoder in :mod:`peerkeeper.wire` raises for bad
    input. The peer layer turns it into a dropped message or a disconnect.
    """


class LimitExceeded(DecodeError):
    """A well-formed payload breaks a protocol limit that Core punishes.

    Bitcoin Core calls ``Misbehaving`` for these (e.g. an ``addr`` with more than
    ``MAX_ADDR_TO_SEND`` entries, src/net_processing.cpp ``ProcessAddrs``), so the
    peer layer reports misbehaviour rather than merely dropping the message.
    """


def sha256d(data: bytes | bytearray | memoryview) -> bytes:
    """Double SHA-256 of ``data`` (32 bytes), Core's ``Hash()`` (src/hash.h)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def checksum(data: bytes | bytearray | memoryview) -> bytes:
    """The 4-byte v1 message checksum: the first 4 bytes of ``sha256d(data)``."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[:4]


def ser_compact_size(n: int) -> bytes:
    """Encode ``n`` (0 <= n < 2**64) as a canonical CompactSize (1, 3, 5 or 9 bytes).

    Source: src/serialize.h ``WriteCompactSize``. Raises ``ValueError`` for a
    negative or too-large ``n``.
    """
    if n < 0xFD:
        if n < 0:
            raise ValueError("CompactSize cannot be negative")
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return b"\xff" + _U64.pack(n)


def ser_var_bytes(data: bytes) -> bytes:
    """CompactSize length prefix followed by ``data`` (Core's ``std::vector<unsigned char>``)."""
    return ser_compact_size(len(data)) + data


def ser_var_str(s: str) -> bytes:
    """A string as CompactSize length + UTF-8 bytes (Core's ``std::string`` serialization)."""
    return ser_var_bytes(s.encode("utf-8", "surrogateescape"))


class Reader:
    """Bounded cursor over a payload; every read checks the remaining length.

    ``Reader(data)`` accepts ``bytes``, ``bytearray`` or ``memoryview``. Each
    ``read_*`` method returns a Python value and advances the cursor; any read
    past the end, non-canonical CompactSize, or length above the given limit
    raises :class:`DecodeError`. Nothing is allocated before its length has been
    checked against what is actually left in the buffer, so a lying length
    prefix costs nothing.
    """

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data) if not isinstance(data, bytes) else data
        self._pos = 0
        self._end = len(self._data)

    @property
    def pos(self) -> int:
        """Bytes consumed so far."""
        return self._pos

    def remaining(self) -> int:
        """Bytes not yet consumed."""
        return self._end - self._pos

    def empty(self) -> bool:
        """True when every byte has been consumed (Core's ``DataStream::empty``)."""
        return self._pos >= self._end

    def _take(self, n: int) -> int:
        pos = self._pos
        end = pos + n
        if end > self._end:
            raise DecodeError(
                f"short read: wanted {n} bytes at offset {pos}, {self._end - pos} left"
            )
        self._pos = end
        return pos

    def read(self, n: int) -> bytes:
        """Read exactly ``n`` bytes."""
        pos = self._take(n)
        return self._data[pos : pos + n]

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes (Core's ``ignore``)."""
        self._take(n)

    def read_rest(self) -> bytes:
        """Everything left."""
        pos = self._pos
        self._pos = self._end
        return self._data[pos:]

    def u8(self) -> int:
        """Unsigned 8-bit integer."""
        return self._data[self._take(1)]

    def bool(self) -> bool:
        """A one-byte boolean: any non-zero byte is true (Core reads ``bool`` as a char)."""
        return self._data[self._take(1)] != 0

    def u16be(self) -> int:
        """Unsigned 16-bit big-endian integer (network-order port)."""
        return int(_U16BE.unpack_from(self._data, self._take(2))[0])

    def u16(self) -> int:
        """Unsigned 16-bit little-endian integer."""
        return int(_U16.unpack_from(self._data, self._take(2))[0])

    def i32(self) -> int:
        """Signed 32-bit little-endian integer."""
        return int(_I32.unpack_from(self._data, self._take(4))[0])

    def u32(self) -> int:
        """Unsigned 32-bit little-endian integer."""
        return int(_U32.unpack_from(self._data, self._take(4))[0])

    def i64(self) -> int:
        """Signed 64-bit little-endian integer."""
        return int(_I64.unpack_from(self._data, self._take(8))[0])

    def u64(self) -> int:
        """Unsigned 64-bit little-endian integer."""
        return int(_U64.unpack_from(self._data, self._take(8))[0])

    def compact_size(self, limit: int = MAX_SIZE) -> int:
        """Read a CompactSize; reject non-canonical forms and values above ``limit``.

        Source: src/serialize.h ``ReadCompactSize`` (range check against
        ``MAX_SIZE`` by default). Raises :class:`DecodeError`.
        """
        data = self._data
        first = data[self._take(1)]
        if first < 0xFD:
            n = first
        elif first == 0xFD:
            n = _U16.unpack_from(data, self._take(2))[0]
            if n < 0xFD:
                raise DecodeError("non-canonical ReadCompactSize()")
        elif first == 0xFE:
            n = _U32.unpack_from(data, self._take(4))[0]
            if n < 0x10000:
                raise DecodeError("non-canonical ReadCompactSize()")
        else:
            n = _U64.unpack_from(data, self._take(8))[0]
            if n < 0x100000000:
                raise DecodeError("non-canonical ReadCompactSize()")
        if n > limit:
            raise DecodeError(f"size {n} exceeds limit {limit}")
        return int(n)

    def var_bytes(self, limit: int = MAX_SIZE) -> bytes:
        """CompactSize-prefixed byte string of at most ``limit`` bytes."""
        n = self.compact_size(limit)
        return self.read(n)

    def var_str(self, limit: int = MAX_SIZE) -> str:
        """CompactSize-prefixed string of at most ``limit`` bytes (Core's ``LIMITED_STRING``).

        Bytes that are not UTF-8 are kept with ``surrogateescape`` so re-encoding
        reproduces them exactly.
        """
        return self.var_bytes(limit).decode("utf-8", "surrogateescape")
