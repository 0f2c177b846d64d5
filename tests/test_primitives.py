"""Transactions and blocks walked by peerkeeper.wire.primitives, and the tx/block messages.

Real bytes, inline: mainnet's genesis block, regtest's block 1 (made by Core, with a
segwit coinbase), and three mainnet transactions with the txids and wtxids Core's
src/test/txpackage_tests.cpp checks. When ``../shared`` is present, the whole regtest
chain Core's functional framework caches (``shared/core-functional/cache``) is walked
too, each merkle root recomputed from the txids.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerkeeper.bitcoin.peer import BitcoinPeer, PeerConfig
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import Service
from peerkeeper.wire.codec import MAX_SIZE, DecodeError, ser_compact_size, sha256d
from peerkeeper.wire.messages import (
    MESSAGE_TYPES,
    Block,
    BlockHeader,
    Tx,
    UnknownMessage,
    Verack,
    Version,
    decode_message,
)
from peerkeeper.wire.primitives import TxInfo, parse_block, parse_tx

SHARED = Path(__file__).resolve().parents[2] / "shared"
REGTEST_BLOCKS = SHARED / "core-functional" / "cache" / "node0" / "regtest" / "blocks"

GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72"
    "206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff"
    "0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f"
    "61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
)
GENESIS_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a"
    "7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
GENESIS_BLOCK = GENESIS_HEADER + b"\x01" + GENESIS_COINBASE
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_TXID = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"

#: Regtest block 1 from Core's functional-test cache: a coinbase with the BIP141 witness
#: commitment and the 32-byte witness reserved value as its witness.
REGTEST_GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
REGTEST_BLOCK_1 = bytes.fromhex(
    "0000002006226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f35b99ed4e2"
    "e165de2ad77f1bba48049358c9bb740445f3c83ebdb3e83aa5bca8dbe5494dffff7f20000000000102"
    "0000000001010000000000000000000000000000000000000000000000000000000000000000ffffff"
    "ff025100feffffff0200f2052a010000001976a9142b4569203694fc997e13f2c0a1383b9e16c77a0d"
    "88ac0000000000000000266a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b4"
    "8bebd836974e8cf9012000000000000000000000000000000000000000000000000000000000000000"
    "0000000000"
)

#: (raw, txid, wtxid) from Core's src/test/txpackage_tests.cpp ``package_hash_tests``:
#: two real segwit transactions and one legacy (display order hex).
CORE_TXS = [
    (
        "02000000000101964b8aa63509579ca6086e6012eeaa4c2f4dd1e283da29b67c8eea38b3c6fd220000"
        "000000fdffffff0294c618000000000017a9145afbbb42f4e83312666d0697f9e66259912ecde38768"
        "fa2c0000000000160014897388a0889390fd0e153a22bb2cf9d8f019faf50247304402200547406380"
        "719f84d68cf4e96cc3e4a1688309ef475b150be2b471c70ea562aa02206d255f5acc40fd95981874d7"
        "7201d2eb07883657ce1c796513f32b6079545cdf0121023ae77335cefcb5ab4c1dc1fb0d2acfece184"
        "e593727d7d5906c78e564c7c11d125cf0c00",
        "bd0f71c1d5e50589063e134fad22053cdae5ab2320db5bf5e540198b0b5a4e69",
        "85cd1a31eb38f74ed5742ec9cb546712ab5aaf747de28a9168b53e846cbda17f",
    ),
    (
        "01000000010b26e9b7735eb6aabdf358bab62f9816a21ba9ebdb719d5299e88607d722c19000000000"
        "8b4830450220070aca44506c5cef3a16ed519d7c3c39f8aab192c4e1c90d065f37b8a4af6141022100"
        "a8e160b856c2d43d27d8fba71e5aef6405b8643ac4cb7cb3c462aced7f14711a0141046d11fee51b0e"
        "60666d5049a9101a72741df480b96ee26488a4d3466b95c9a40ac5eeef87e10a5cd336c19a84565f80"
        "fa6c547957b7700ff4dfbdefe76036c339ffffffff021bff3d11000000001976a91404943fdd508053"
        "c75000106d3bc6e2754dbcff1988ac2f15de00000000001976a914a266436d2965547608b9e15d9032"
        "a7b9d64fa43188ac00000000",
        "b4749f017444b051c44dfd2720e88f314ff94f3dd6d56d40ef65854fcd7fff6b",
        "b4749f017444b051c44dfd2720e88f314ff94f3dd6d56d40ef65854fcd7fff6b",
    ),
    (
        "0200000000010177862801f77c2c068a70372b4c435ef8dd621291c36a64eb4dd491f02218f5324600"
        "000000fdffffff014a0100000000000022512035ea312034cfac01e956a269f3bf147f569c2fbb0018"
        "0677421262da042290d803402be713325ff285e66b0380f53f2fae0d0fb4e16f378a440fed51ce8350"
        "61437566729d4883bc917632f3cff474d6384bc8b989961a1d730d4a87ed38ad28bd337b20f1d658c6"
        "c138b1c312e072b4446f50f01ae0da03a42e6274f8788aae53416a7fac0063036f7264010118746578"
        "742f706c61696e3b636861727365743d7574662d3800357b2270223a226272632d3230222c226f7022"
        "3a226d696e74222c227469636b223a224342414c222c22616d74223a2236393639227d6821c1f1d658"
        "c6c138b1c312e072b4446f50f01ae0da03a42e6274f8788aae53416a7f00000000",
        "ee707be5201160e32c4fc715bec227d1aeea5940fb4295605e7373edce3b1a93",
        "e065bac15f62bb4e761d761db928ddee65a47296b2b776785abb912cdec474e3",
    ),
]

#: From Core's src/test/data/tx_valid.json: three inputs, only the second with a witness
#: (empty stacks for the others), split into its parts.
MIXED_VERSION = "01000000"
MIXED_IO = (
    "0300010000000000000000000000000000000000000000000000000000000000000000000000020000"
    "0000010000000000000000000000000000000000000000000000000000000000000100000000ffffff"
    "ff00010000000000000000000000000000000000000000000000000000000000000200000000020000"
    "0003e8030000000000000151d0070000000000000151b80b0000000000000151"
)
MIXED_WITNESS = (
    "0002473044022022fceb54f62f8feea77faac7083c3b56c4676a78f93745adc8a35800bc36adfa0220"
    "26927df9abcf0a8777829bcfcce3ff0a385fa54c3f9df577405e3ef24ee56479022103596d3451025c"
    "19dbbdeb932d6bf8bfb4ad499b95b6f88db8899efac102e5fc7100"
)
MIXED_LOCKTIME = "00000000"
MIXED_TX = bytes.fromhex(MIXED_VERSION + "0001" + MIXED_IO + MIXED_WITNESS + MIXED_LOCKTIME)

ALL_TXS = [bytes.fromhex(raw) for raw, _, _ in CORE_TXS] + [GENESIS_COINBASE, MIXED_TX]

OUTPOINT = bytes(32) + b"\x00\x00\x00\x00"
TXIN = OUTPOINT + b"\x00" + b"\xff\xff\xff\xff"
TXOUT = bytes(8) + b"\x01\x51"


def merkle_root(hashes: list[bytes]) -> bytes:
    """Core's ``ComputeMerkleRoot`` (src/consensus/merkle.cpp), for the checks only."""
    while len(hashes) > 1:
        if len(hashes) % 2:
            hashes = [*hashes, hashes[-1]]
        hashes = [sha256d(hashes[i] + hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


# -- transactions ----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "txid", "wtxid"), CORE_TXS)
def test_txid_and_wtxid_match_core(raw: str, txid: str, wtxid: str) -> None:
    data = bytes.fromhex(raw)
    info, end = parse_tx(data)
    assert end == len(data) == info.size
    assert (info.txid_hex, info.wtxid_hex) == (txid, wtxid)
    assert info.txid == bytes.fromhex(txid)[::-1]
    assert info.has_witness == (txid != wtxid)
    assert info.wtxid == sha256d(data)
    msg = decode_message("tx", data)
    assert isinstance(msg, Tx)
    assert (msg.txid, msg.wtxid, msg.has_witness, msg.size) == (
        info.txid,
        info.wtxid,
        info.has_witness,
        len(data),
    )
    assert msg.encode() == data
    assert Tx.decode(msg.encode()) == msg


def test_tx_fields() -> None:
    info, _ = parse_tx(bytes.fromhex(CORE_TXS[0][0]))
    assert info == TxInfo(
        txid=info.txid,
        wtxid=info.wtxid,
        version=2,
        n_inputs=1,
        n_outputs=2,
        locktime=0x0CCF25,
        has_witness=True,
        size=223,
    )
    genesis, _ = parse_tx(GENESIS_COINBASE)
    assert genesis.txid_hex == GENESIS_TXID == genesis.wtxid_hex
    assert (genesis.version, genesis.n_inputs, genesis.n_outputs, genesis.has_witness) == (
        1,
        1,
        1,
        False,
    )


def test_txid_skips_the_marker_and_every_witness_stack() -> None:
    info, end = parse_tx(MIXED_TX)
    assert end == len(MIXED_TX)
    stripped = bytes.fromhex(MIXED_VERSION + MIXED_IO + MIXED_LOCKTIME)
    assert info.txid == sha256d(stripped)
    assert info.wtxid == sha256d(MIXED_TX)
    assert (info.n_inputs, info.n_outputs, info.has_witness) == (3, 3, True)
    legacy, _ = parse_tx(stripped)
    assert legacy.txid == legacy.wtxid == info.txid and not legacy.has_witness


def test_parse_tx_at_an_offset_stops_at_the_end() -> None:
    one, two = ALL_TXS[0], ALL_TXS[1]
    data = b"junk" + one + two + b"tail"
    info, end = parse_tx(data, 4)
    assert end == 4 + len(one) and info.wtxid == sha256d(one)
    info2, end2 = parse_tx(data, end)
    assert end2 == len(data) - 4 and info2.txid == sha256d(two)
    with pytest.raises(DecodeError):
        parse_tx(data, len(data) - 2)
    with pytest.raises(DecodeError):
        parse_tx(data, -1)


@pytest.mark.parametrize("raw", ALL_TXS, ids=range(len(ALL_TXS)))
def test_every_truncation_raises_decode_error(raw: bytes) -> None:
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            parse_tx(raw[:cut])
        with pytest.raises(DecodeError):
            decode_message("tx", raw[:cut])
    # Core's deserializer leaves bytes after the transaction unread: so do we
    tx = decode_message("tx", raw + b"\x00\x01")
    assert isinstance(tx, Tx) and tx.raw == raw


@pytest.mark.parametrize(
    "raw",
    [
        # 2^60 inputs: above MAX_SIZE.
        b"\x01\x00\x00\x00\xff" + (1 << 60).to_bytes(8, "little") + bytes(100),
        # MAX_SIZE inputs, outputs, witness items: each one byte short of nothing.
        b"\x01\x00\x00\x00" + ser_compact_size(MAX_SIZE) + bytes(1000),
        b"\x01\x00\x00\x00\x01" + TXIN + ser_compact_size(MAX_SIZE) + bytes(1000),
        b"\x01\x00\x00\x00\x00\x01\x01" + TXIN + b"\x01" + TXOUT + ser_compact_size(MAX_SIZE),
        # A script, a witness item as long as MAX_SIZE.
        b"\x01\x00\x00\x00\x01" + OUTPOINT + ser_compact_size(MAX_SIZE) + bytes(100),
        b"\x01\x00\x00\x00\x00\x01\x01" + TXIN + b"\x01" + TXOUT + b"\x01"
        + ser_compact_size(MAX_SIZE) + bytes(100),
    ],
)  # fmt: skip
def test_lying_counts_raise_at_once(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_tx(raw)
    with pytest.raises(DecodeError):
        decode_message("tx", raw)
    header = GENESIS_HEADER
    with pytest.raises(DecodeError):
        decode_message("block", header + ser_compact_size(MAX_SIZE) + raw)
    with pytest.raises(DecodeError):
        decode_message("block", header + b"\xff" + (1 << 60).to_bytes(8, "little"))


def test_counts_are_checked_against_the_bytes_left() -> None:
    with pytest.raises(DecodeError, match="cannot fit"):
        parse_tx(b"\x01\x00\x00\x00" + ser_compact_size(1_000_000) + bytes(41 * 999_999))
    with pytest.raises(DecodeError, match="cannot fit"):
        parse_block(GENESIS_HEADER + ser_compact_size(1000) + bytes(9999))


def test_non_canonical_compact_size_is_refused() -> None:
    with pytest.raises(DecodeError, match="non-canonical"):
        parse_tx(b"\x01\x00\x00\x00\xfd\x01\x00" + TXIN + b"\x01" + TXOUT + bytes(4))


def test_superfluous_witness_and_unknown_flags_like_core() -> None:
    version, locktime = b"\x02\x00\x00\x00", bytes(4)
    body = b"\x01" + TXIN + b"\x01" + TXOUT
    witness = b"\x01\x01\xaa"
    ok, _ = parse_tx(version + b"\x00\x01" + body + witness + locktime)
    assert ok.has_witness and ok.txid == sha256d(version + body + locktime)
    with pytest.raises(DecodeError, match="Superfluous witness record"):
        parse_tx(version + b"\x00\x01" + body + b"\x00" + locktime)
    with pytest.raises(DecodeError, match="Unknown transaction optional data"):
        parse_tx(version + b"\x00\x02" + body + locktime)
    with pytest.raises(DecodeError, match="Unknown transaction optional data"):
        parse_tx(version + b"\x00\x03" + body + witness + locktime)
    # An empty stack with one item of zero bytes is a witness (HasWitness: stack not empty).
    assert parse_tx(version + b"\x00\x01" + body + b"\x01\x00" + locktime)[0].has_witness


def test_zero_inputs_are_read_as_the_marker() -> None:
    version, locktime = b"\x01\x00\x00\x00", bytes(4)
    # Flags 0 after an empty vin: no inputs, no outputs, and nothing else read.
    empty, end = parse_tx(version + b"\x00\x00" + locktime)
    assert end == 10 and (empty.n_inputs, empty.n_outputs, empty.has_witness) == (0, 0, False)
    assert empty.txid == sha256d(version + b"\x00\x00" + locktime)
    # A legacy transaction with no inputs and one output cannot be read with witness.
    with pytest.raises(DecodeError):
        parse_tx(version + b"\x00\x01" + TXOUT + locktime)
    # An extended transaction with no inputs has no witness to carry.
    with pytest.raises(DecodeError, match="Superfluous witness record"):
        parse_tx(version + b"\x00\x01\x00\x01" + TXOUT + locktime)


# -- blocks ----------------------------------------------------------------------------


def test_genesis_block() -> None:
    header, txs = parse_block(GENESIS_BLOCK)
    assert header.hash()[::-1].hex() == GENESIS_HASH
    assert header.serialize() == GENESIS_HEADER
    assert (header.version, header.time, header.bits, header.nonce) == (
        1,
        1231006505,
        0x1D00FFFF,
        2083236893,
    )
    assert [t.txid_hex for t in txs] == [GENESIS_TXID]
    msg = decode_message("block", GENESIS_BLOCK)
    assert isinstance(msg, Block)
    assert msg.hash == header.hash() and msg.header == header
    assert isinstance(msg.header, BlockHeader)
    assert msg.txids == [txs[0].txid] == [header.merkle_root] == msg.wtxids
    assert msg.encode() == GENESIS_BLOCK
    assert Block.decode(msg.encode()) == msg
    assert GENESIS_HASH in repr(msg)


def test_regtest_block_with_a_segwit_coinbase() -> None:
    msg = Block.decode(REGTEST_BLOCK_1)
    assert msg.header.prev_block[::-1].hex() == REGTEST_GENESIS_HASH
    (coinbase,) = msg.txs
    assert coinbase.has_witness and coinbase.n_outputs == 2
    assert msg.txids == [msg.header.merkle_root]
    assert msg.wtxids == [sha256d(REGTEST_BLOCK_1[81:])] != msg.txids


def test_block_truncated_or_with_trailing_bytes() -> None:
    for raw in (GENESIS_BLOCK, REGTEST_BLOCK_1):
        for cut in range(len(raw)):
            with pytest.raises(DecodeError):
                decode_message("block", raw[:cut])
        with pytest.raises(DecodeError, match="after the last transaction"):
            parse_block(raw + b"\x00")  # the strict walk of a whole block
        block = decode_message("block", raw + b"\x00")  # the message: the rest unread
        assert isinstance(block, Block) and block.raw == raw


def test_block_of_many_transactions() -> None:
    txs = [*ALL_TXS, *ALL_TXS]
    raw = GENESIS_HEADER + ser_compact_size(len(txs)) + b"".join(txs)
    msg = Block.decode(raw)
    assert msg.txids == [parse_tx(t)[0].txid for t in txs]
    assert msg.wtxids == [sha256d(t) for t in txs]
    assert Block.decode(GENESIS_HEADER + b"\x00").txs == []


def test_regtest_chain_from_cores_cache() -> None:
    """Every block of the 199-block chain Core's framework caches: parsed, merkle roots hold."""
    blk, key_file = REGTEST_BLOCKS / "blk00000.dat", REGTEST_BLOCKS / "xor.dat"
    if not blk.is_file() or not key_file.is_file():
        pytest.skip(f"Core's regtest block cache not found at {REGTEST_BLOCKS} (../shared absent)")
    key = key_file.read_bytes()
    with blk.open("rb") as f:
        head = f.read(1 << 20)  # the 200 blocks take about 50 kB; the rest is zeros
    mask = (key * (len(head) // len(key) + 1))[: len(head)]
    data = (int.from_bytes(head, "little") ^ int.from_bytes(mask, "little")).to_bytes(
        len(head), "little"
    )
    pos, prev, count = 0, None, 0
    while data[pos : pos + 4] == bytes.fromhex("fabfb5da"):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        msg = Block.decode(data[pos + 8 : pos + 8 + size])
        assert merkle_root(msg.txids) == msg.header.merkle_root
        assert prev is None or msg.header.prev_block == prev
        prev, pos, count = msg.hash, pos + 8 + size, count + 1
    assert count == 200


# -- messages --------------------------------------------------------------------------


def test_registered_and_known_to_core() -> None:
    from peerkeeper.wire.messages import ALL_NET_MESSAGE_TYPES

    assert MESSAGE_TYPES["tx"] is Tx and MESSAGE_TYPES["block"] is Block
    assert set(MESSAGE_TYPES) <= set(ALL_NET_MESSAGE_TYPES)


def _connected_peer(conn_type: ConnectionType) -> BitcoinPeer:
    peer = BitcoinPeer(
        conn_type=conn_type,
        addr=Service.parse("1.2.3.4:8333", 8333),
        local_nonce=42,
        config=PeerConfig(services=0, user_agent="/peerkeeper:test/"),
        now=1_800_000_000.0,
        rng=random.Random(1),
        addr_source=None,  # type: ignore[arg-type]  # never asked: no getaddr here
        is_local_nonce=set[int]().__contains__,
    )
    peer.start(1_800_000_000.0)
    them = Version(version=70016, services=1 | 8, timestamp=1_800_000_000, nonce=7)
    peer.on_message(them, 1_800_000_000.0)
    peer.on_message(Verack(), 1_800_000_000.0)
    return peer


@pytest.mark.parametrize(
    "conn_type",
    [ConnectionType.OUTBOUND_FULL_RELAY, ConnectionType.BLOCK_RELAY, ConnectionType.INBOUND],
)
def test_the_peer_treats_tx_and_block_as_it_did_unknown_ones(conn_type: ConnectionType) -> None:
    tx_raw = ALL_TXS[0]
    for command, raw in (("tx", tx_raw), ("block", GENESIS_BLOCK)):
        decoded, unknown = _connected_peer(conn_type), _connected_peer(conn_type)
        now = 1_800_000_001.0
        msg = decode_message(command, raw)
        assert not isinstance(msg, UnknownMessage)
        assert decoded.on_message(msg, now) == unknown.on_message(UnknownMessage(command, raw), now)
        assert decoded.disconnected == unknown.disconnected


@settings(max_examples=400)
@given(st.sampled_from(["tx", "block"]), st.binary(max_size=400))
def test_arbitrary_bytes_give_the_message_or_decode_error(command: str, payload: bytes) -> None:
    try:
        msg = decode_message(command, payload)
    except DecodeError:
        return
    assert isinstance(msg, Tx if command == "tx" else Block)
    assert msg.encode() == payload


@settings(max_examples=400)
@given(
    st.sampled_from(ALL_TXS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.booleans(),
)
def test_mutated_transactions_give_tx_or_decode_error(
    raw: bytes, edits: list[tuple[int, int]], in_block: bool
) -> None:
    data = bytearray(raw)
    for at, value in edits:
        data[at % len(data)] = value
    payload = GENESIS_HEADER + b"\x01" + bytes(data) if in_block else bytes(data)
    command = "block" if in_block else "tx"
    try:
        msg = decode_message(command, payload)
    except DecodeError:
        return
    # a mutated count may end the object early: the rest is left unread, as in Core
    assert payload.startswith(msg.encode())
    if isinstance(msg, Tx):
        assert msg.size == len(msg.encode())
