"""ASMap: Bitcoin Core's compressed IP -> AS-number map, and its netgroup manager.

A pure port of Bitcoin Core ``src/util/asmap.cpp`` (``Interpret``, ``SanityCheckAsmap``,
``CheckStandardAsmap``, ``DecodeAsmap``, ``AsmapVersion``) and ``src/netgroup.cpp``
(``NetGroupManager::GetGroup``, ``GetMappedAS``, ``GetAsmapVersion``, ``UsingASMap``).

The asmap is a bit-packed bytecode for a binary trie over the 128 bits of an IPv6
address (IPv4 looked up as ``::ffff:a.b.c.d``).  Bits of the asmap are read
least-significant first within each byte; bits of the IP most-significant first.  Four
instructions: RETURN ``[0]`` + ASN, JUMP ``[1,0]`` + offset, MATCH ``[1,1,0]`` + pattern,
DEFAULT ``[1,1,1]`` + ASN, each argument a variable-length integer (``DecodeBits``).

:func:`encode_asmap` goes the other way (prefixes -> bytecode), for tests and the
simulator's virtual Internet.

Pure: the file of ``-asmap=<file>`` is read by :func:`peerkeeper.io.addrdb.load_asmap`.
Errors raise :class:`AsmapError` (a ``ValueError``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence

from peerkeeper.net.netaddr import IPV4_IN_IPV6_PREFIX, NetAddr, Network

__all__ = [
    "AsmapError",
    "NetGroupManager",
    "asmap_version",
    "check_standard_asmap",
    "encode_asmap",
    "interpret",
    "sanity_check_asmap",
]

#: Core's ``INVALID`` marker for decoding errors (src/util/asmap.cpp).
_INVALID = 0xFFFFFFFF

# Instruction ids (src/util/asmap.cpp ``enum class Instruction``).
_RETURN = 0
_JUMP = 1
_MATCH = 2
_DEFAULT = 3

#: Variable-length integer classes (src/util/asmap.cpp).
_TYPE_BIT_SIZES = (0, 0, 1)
_ASN_BIT_SIZES = (15, 16, 17, 18, 19, 20, 21, 22, 23, 24)
_MATCH_BIT_SIZES = (1, 2, 3, 4, 5, 6, 7, 8)
_JUMP_BIT_SIZES = tuple(range(5, 31))

#: Core ``NET_IPV6`` (src/netaddress.h ``enum Network``): first byte of an AS-based group.
_NET_IPV6_CORE_ID = 2


class AsmapError(ValueError):
    """The asmap data is malformed (fails ``SanityCheckAsmap``) or could not be read."""


def _decode_bits(pos: int, data: bytes, minval: int, bit_sizes: Sequence[int]) -> tuple[int, int]:
    """Core ``DecodeBits`` (src/util/asmap.cpp): returns ``(value or _INVALID, new pos)``.

    Every number is k "1"-bits (its class), a "0"-bit unless it is in the last class,
    then ``bit_sizes[k]`` bits big-endian of its offset within the class.
    """
    val = minval
    endpos = len(data) * 8
    last = len(bit_sizes) - 1
    for k, size in enumerate(bit_sizes):
        if k != last:
            if pos >= endpos:
                break
            bit = (data[pos >> 3] >> (pos & 7)) & 1
            pos += 1
        else:
            bit = 0
        if bit:
            val += 1 << size
        else:
            for b in range(size):
                if pos >= endpos:
                    return _INVALID, pos  # EOF in mantissa
                bit = (data[pos >> 3] >> (pos & 7)) & 1
                pos += 1
                val += bit << (size - 1 - b)
            return val, pos
    return _INVALID, pos  # EOF in exponent


def interpret(asmap: bytes, ip: bytes) -> int:
    """Core ``Interpret`` (src/util/asmap.cpp): the AS number for ``ip`` (16 bytes, or
    any length in whole bytes), 0 when unmapped.

    Raises:
        AsmapError: the bytecode runs off its end without a RETURN (Core asserts here;
            data that passed :func:`sanity_check_asmap` never does this).
    """
    pos = 0
    endpos = len(asmap) * 8
    ip_bit = 0
    ip_bits_end = len(ip) * 8
    default_asn = 0
    while pos < endpos:
        opcode, pos = _decode_bits(pos, asmap, 0, _TYPE_BIT_SIZES)
        if opcode == _RETURN:
            asn, pos = _decode_bits(pos, asmap, 1, _ASN_BIT_SIZES)
            if asn == _INVALID:
                break  # ASN straddles EOF
            return asn
        if opcode == _JUMP:
            jump, pos = _decode_bits(pos, asmap, 17, _JUMP_BIT_SIZES)
            if jump == _INVALID or ip_bit == ip_bits_end or jump >= endpos - pos:
                break
            bit = (ip[ip_bit >> 3] >> (7 - (ip_bit & 7))) & 1
            ip_bit += 1
            if bit:
                pos += jump
        elif opcode == _MATCH:
            match, pos = _decode_bits(pos, asmap, 2, _MATCH_BIT_SIZES)
            if match == _INVALID:
                break
            matchlen = match.bit_length() - 1
            if ip_bits_end - ip_bit < matchlen:
                break
            for bit_i in range(matchlen):
                bit = (ip[ip_bit >> 3] >> (7 - (ip_bit & 7))) & 1
                ip_bit += 1
                if bit != (match >> (matchlen - 1 - bit_i)) & 1:
                    return default_asn
        elif opcode == _DEFAULT:
            default_asn, pos = _decode_bits(pos, asmap, 1, _ASN_BIT_SIZES)
            if default_asn == _INVALID:
                break
        else:
            break  # instruction straddles EOF
    raise AsmapError("asmap bytecode ended without a RETURN (failed sanity check?)")


def sanity_check_asmap(asmap: bytes, bits: int) -> bool:
    """Core ``SanityCheckAsmap`` (src/util/asmap.cpp): simulate every execution path of
    the bytecode for ``bits``-bit inputs; True iff it is well formed (valid jumps, no
    unreachable code, at most 7 zero padding bits, every path ends in RETURN).
    """
    pos = 0
    endpos = len(asmap) * 8
    jumps: list[tuple[int, int]] = []  # (bit offset to jump to, bits left after the jump)
    prevopcode = _JUMP
    had_incomplete_match = False
    while pos != endpos:
        if jumps and pos >= jumps[-1][0]:
            return False  # a jump into the middle of the previous instruction
        opcode, pos = _decode_bits(pos, asmap, 0, _TYPE_BIT_SIZES)
        if opcode == _RETURN:
            if prevopcode == _DEFAULT:
                return False  # RETURN right after DEFAULT could be combined
            asn, pos = _decode_bits(pos, asmap, 1, _ASN_BIT_SIZES)
            if asn == _INVALID:
                return False
            if not jumps:
                if endpos - pos > 7:
                    return False  # excessive padding
                while pos != endpos:
                    if (asmap[pos >> 3] >> (pos & 7)) & 1:
                        return False  # non-zero padding bit
                    pos += 1
                return True
            if pos != jumps[-1][0]:
                return False  # unreachable code
            bits = jumps[-1][1]
            jumps.pop()
            prevopcode = _JUMP
        elif opcode == _JUMP:
            jump, pos = _decode_bits(pos, asmap, 17, _JUMP_BIT_SIZES)
            if jump == _INVALID or jump > endpos - pos or bits == 0:
                return False
            bits -= 1
            jump_offset = pos + jump
            if jumps and jump_offset >= jumps[-1][0]:
                return False  # intersecting jumps
            jumps.append((jump_offset, bits))
            prevopcode = _JUMP
        elif opcode == _MATCH:
            match, pos = _decode_bits(pos, asmap, 2, _MATCH_BIT_SIZES)
            if match == _INVALID:
                return False
            matchlen = match.bit_length() - 1
            if prevopcode != _MATCH:
                had_incomplete_match = False
            if matchlen < 8 and had_incomplete_match:
                return False
            had_incomplete_match = matchlen < 8
            if bits < matchlen:
                return False
            bits -= matchlen
            prevopcode = _MATCH
        elif opcode == _DEFAULT:
            if prevopcode == _DEFAULT:
                return False  # two successive DEFAULTs
            asn, pos = _decode_bits(pos, asmap, 1, _ASN_BIT_SIZES)
            if asn == _INVALID:
                return False
            prevopcode = _DEFAULT
        else:
            return False  # instruction straddles EOF
    return False  # reached EOF without a RETURN


def check_standard_asmap(data: bytes) -> bool:
    """Core ``CheckStandardAsmap`` (src/util/asmap.cpp): sane for 128-bit inputs."""
    return sanity_check_asmap(data, 128)


def asmap_version(data: bytes) -> bytes:
    """Core ``AsmapVersion`` (src/util/asmap.cpp): sha256d of the raw asmap bytes, or 32
    zero bytes (a null ``uint256``) when there is no asmap.  Stored in peers.dat."""
    if not data:
        return bytes(32)
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# A trie node: None (unmapped), an AS number (a leaf), or [child for bit 0, child for 1].
_Trie = int | None | list["_Trie"]


def _encode_bits(out: list[int], val: int, minval: int, bit_sizes: Sequence[int]) -> None:
    """The inverse of :func:`_decode_bits` (contrib/asmap/asmap.py ``_VarLenCoder``)."""
    val -= minval
    last = len(bit_sizes) - 1
    for k, size in enumerate(bit_sizes):
        if val >= 1 << size:
            if k == last:
                raise AsmapError(f"value {val + minval} too large to encode")
            val -= 1 << size
            out.append(1)
            continue
        if k != last:
            out.append(0)
        out.extend((val >> (size - 1 - b)) & 1 for b in range(size))
        return


def _prefix_bits(prefix: str) -> list[int]:
    """``"a.b.c.d/n"`` (as ``::ffff:a.b.c.d/96+n``) or an IPv6 CIDR -> the prefix bits."""
    net = ipaddress.ip_network(prefix, strict=True)
    if isinstance(net, ipaddress.IPv4Network):
        raw = IPV4_IN_IPV6_PREFIX + net.network_address.packed
        length = 96 + net.prefixlen
    else:
        raw = net.network_address.packed
        length = net.prefixlen
    return [(raw[i >> 3] >> (7 - (i & 7))) & 1 for i in range(length)]


def _simplify(node: _Trie) -> _Trie:
    if isinstance(node, list):
        a, b = _simplify(node[0]), _simplify(node[1])
        if not isinstance(a, list) and a == b:
            return a
        return [a, b]
    return node


def _encode_trie(node: _Trie, out: list[int]) -> None:
    if node is None:
        raise AsmapError("an unmapped subtree can only be a MATCH's other side")
    if isinstance(node, int):
        out.append(0)  # RETURN
        _encode_bits(out, node, 1, _ASN_BIT_SIZES)
        return
    # A run of nodes with one unmapped side is a MATCH on the mapped side's bits: a
    # mismatch returns the default AS (0, "unmapped": no DEFAULT is ever emitted).
    bits: list[int] = []
    while isinstance(node, list) and (node[0] is None or node[1] is None):
        bit = 1 if node[0] is None else 0
        bits.append(bit)
        node = node[bit]
    for start in range(0, len(bits), 8):  # full 8-bit MATCHes first, as the check wants
        chunk = bits[start : start + 8]
        out.extend((1, 1, 0))  # MATCH
        _encode_bits(out, (1 << len(chunk)) | int("".join(map(str, chunk)), 2), 2, _MATCH_BIT_SIZES)
    if bits:
        _encode_trie(node, out)
        return
    assert isinstance(node, list)
    left: list[int] = []
    _encode_trie(node[0], left)
    out.extend((1, 0))  # JUMP over the 0-side
    _encode_bits(out, len(left), 17, _JUMP_BIT_SIZES)
    out.extend(left)
    _encode_trie(node[1], out)


def encode_asmap(entries: Iterable[tuple[str, int]]) -> bytes:
    """Asmap bytecode mapping each ``(prefix, asn)`` (a CIDR string, IPv4 or IPv6; ASN
    >= 1) and nothing else: the longest matching prefix wins, as in Core's asmap files
    (contrib/asmap/asmap.py ``ASMap.to_binary``, without its size optimisations).

    The result passes :func:`check_standard_asmap`, and :func:`interpret` gives each
    address the AS of its longest matching prefix, 0 when none matches.

    Raises:
        AsmapError: no entries, an ASN < 1 or too large, or a prefix not a CIDR.
    """
    items = sorted(((_checked_prefix(p), asn) for p, asn in entries), key=lambda e: len(e[0]))
    if not items:
        raise AsmapError("an asmap needs at least one prefix")
    root: _Trie = None
    for bits, asn in items:  # shorter prefixes first, so longer ones override them
        if asn < 1:
            raise AsmapError(f"AS numbers start at 1, not {asn}")
        if not bits:
            root = asn
            continue
        if not isinstance(root, list):
            root = [root, root]
        node: list[_Trie] = root
        for bit in bits[:-1]:
            child = node[bit]
            if not isinstance(child, list):
                child = node[bit] = [child, child]
            node = child
        node[bits[-1]] = asn
    out: list[int] = []
    _encode_trie(_simplify(root), out)
    out.extend([0] * (-len(out) % 8))
    data = bytearray(len(out) // 8)
    for i, bit in enumerate(out):
        data[i >> 3] |= bit << (i & 7)
    return bytes(data)


def _checked_prefix(prefix: str) -> list[int]:
    try:
        return _prefix_bits(prefix)
    except ValueError as exc:
        raise AsmapError(f"bad prefix {prefix!r}: {exc}") from exc


class NetGroupManager:
    """Core ``NetGroupManager`` (src/netgroup.h, src/netgroup.cpp).

    ``NetGroupManager(asmap=b"")``: with an empty asmap, groups are
    :meth:`NetAddr.netgroup` (/16 for IPv4, /32 for IPv6, ...).  With an asmap, IPv4 and
    IPv6 addresses (by net class) that map to a non-zero AS are grouped as
    ``[NET_IPV6] + asn as 4 bytes little-endian``, so IPv4 and IPv6 of one AS share a
    group.  The asmap is checked with :func:`check_standard_asmap` first.

    Lookups are memoised per address (at most ``cache_size`` addresses).

    Raises:
        AsmapError: a non-empty asmap that fails the sanity check.
    """

    __slots__ = ("_asmap", "_version", "_as_cache", "_cache_size")

    def __init__(self, asmap: bytes = b"", *, cache_size: int = 1 << 17) -> None:
        if asmap and not check_standard_asmap(asmap):
            raise AsmapError("sanity check of asmap data failed")
        self._asmap = bytes(asmap)
        self._version = asmap_version(self._asmap)
        self._as_cache: dict[NetAddr, int] = {}
        self._cache_size = cache_size

    @property
    def asmap(self) -> bytes:
        """The raw asmap bytes (empty when none)."""
        return self._asmap

    def get_asmap_version(self) -> bytes:
        """Core ``GetAsmapVersion``: see :func:`asmap_version` (32 bytes)."""
        return self._version

    def using_asmap(self) -> bool:
        """Core ``UsingASMap``: True when an asmap is loaded."""
        return bool(self._asmap)

    def get_mapped_as(self, address: NetAddr) -> int:
        """Core ``GetMappedAS`` (src/netgroup.cpp): the AS number of ``address``, or 0 when
        there is no asmap, the net class is not IPv4/IPv6, or the address is unmapped.

        Addresses with a linked IPv4 (6to4, Teredo, NAT64, ...) are looked up as that
        IPv4 address (``::ffff:a.b.c.d``).
        """
        if not self._asmap:
            return 0
        cached = self._as_cache.get(address)
        if cached is not None:
            return cached
        net_class = address.get_net_class()
        if net_class is not Network.IPV4 and net_class is not Network.IPV6:
            asn = 0
        else:
            if address.has_linked_ipv4():
                ip = IPV4_IN_IPV6_PREFIX + address.get_linked_ipv4().to_bytes(4, "big")
            else:
                ip = address.addr  # an IPv6 address (net class IPv6 => stored as IPv6)
            asn = interpret(self._asmap, ip)
        if len(self._as_cache) >= self._cache_size:
            self._as_cache.clear()
        self._as_cache[address] = asn
        return asn

    def get_group(self, address: NetAddr) -> bytes:
        """Core ``GetGroup`` (src/netgroup.cpp): the netgroup of ``address`` as bytes."""
        if self._asmap:
            asn = self.get_mapped_as(address)
            if asn != 0:
                return bytes((_NET_IPV6_CORE_ID,)) + asn.to_bytes(4, "little")
        return address.netgroup()
