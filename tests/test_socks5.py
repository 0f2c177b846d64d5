"""The sans-IO SOCKS5 client handshake (Core's ``Socks5``, src/netbase.cpp)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerkeeper.net.netbase import PROXY_ERROR_KINDS, ProxyError
from peerkeeper.net.socks5 import Socks5Handshake, socks5_destination


def run(hs: Socks5Handshake, *answers: bytes) -> list[bytes]:
    """Start, feed each answer, collect what the client sends."""
    out = [hs.start()]
    for a in answers:
        sent = hs.receive(a)
        if sent:
            out.append(sent)
    return out


def test_core_bytes_for_ipv4_ipv6_and_onion_destinations() -> None:
    """Core sends every destination as DOMAINNAME (feature_proxy asserts atyp 3)."""
    hs = Socks5Handshake("15.61.23.23", 1234)
    sent = run(hs, b"\x05\x00", b"\x05\x00\x00\x01", b"\x7f\x00\x00\x01\x20\x8d")
    assert sent == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0b15.61.23.23\x04\xd2"]
    assert hs.done and hs.need == 0 and hs.bound == b"\x7f\x00\x00\x01\x20\x8d"
    v6 = "1233:3432:2434:2343:3234:2345:6546:4534"
    assert socks5_destination(v6, 5443) == b"\x03\x27" + v6.encode() + b"\x15\x43"
    onion = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
    assert socks5_destination(onion, 8333) == b"\x03\x3e" + onion.encode() + b"\x20\x8d"
    assert socks5_destination("bücher.example", 1)[2:-2] == b"xn--bcher-kva.example"


def test_user_password_only_when_the_proxy_picks_it() -> None:
    hs = Socks5Handshake("node.noumenon", 8333, ("alice", "pw"))
    sent = run(hs, b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x04", bytes(18))
    assert sent == [
        b"\x05\x02\x00\x02",
        b"\x01\x05alice\x02pw",
        b"\x05\x01\x00\x03\x0dnode.noumenon\x20\x8d",
    ]
    assert hs.done
    # The proxy may choose "no authentication" although credentials were offered.
    hs = Socks5Handshake("a.example", 1, ("alice", "pw"))
    sent = run(hs, b"\x05\x00")
    assert sent[1].startswith(b"\x05\x01\x00\x03")


def test_bytes_may_arrive_one_at_a_time_and_a_domain_bound_address() -> None:
    hs = Socks5Handshake("a.example", 1)
    hs.start()
    for b in b"\x05\x00":
        hs.receive(bytes([b]))
    assert hs.need == 4
    for b in b"\x05\x00\x00\x03":
        assert hs.receive(bytes([b])) == b""
    assert hs.need == 1
    hs.receive(b"\x03")
    assert hs.need == 5  # three name bytes and the port
    hs.receive(b"abc\x00")
    assert not hs.done
    hs.receive(b"\x01")
    assert hs.done and hs.bound == b"abc\x00\x01"


@pytest.mark.parametrize(
    ("answers", "kind", "message", "code"),
    [
        ([b"HT"], "protocol", "Proxy failed to initialize", None),
        ([b"\x05\x01"], "protocol", "Proxy requested wrong authentication method 01", None),
        ([b"\x05\xff"], "auth-failed", "Proxy accepts none of the offered methods", None),
        ([b"\x05\x02"], "protocol", "Proxy requested wrong authentication method 02", None),
        ([b"\x05\x00", b"\x04\x00\x00\x01"], "protocol", "Proxy failed to accept request", None),
        ([b"\x05\x00", b"\x05\x04\x00\x01"], "host-unreachable", "host unreachable", 4),
        (
            [b"\x05\x00", b"\x05\xf0\x00\x01"],
            "onion-descriptor-not-found",
            "onion service descriptor can not be found",
            0xF0,
        ),
        ([b"\x05\x00", b"\x05\x42\x00\x01"], "unknown-reply", "unknown (0x42)", 0x42),
        ([b"\x05\x00", b"\x05\x00\x01\x01"], "protocol", "malformed proxy response", None),
        ([b"\x05\x00", b"\x05\x00\x00\x02"], "protocol", "malformed proxy response", None),
    ],
)
def test_each_bad_answer_is_a_proxy_error_with_cores_words(
    answers: list[bytes], kind: str, message: str, code: int | None
) -> None:
    hs = Socks5Handshake("127.0.0.1", 8333, proxy="127.0.0.1:9050")
    hs.start()
    with pytest.raises(ProxyError) as ei:
        for a in answers:
            hs.receive(a)
    e = ei.value
    assert (e.kind, e.message, e.reply_code, e.proxy_failed) == (kind, message, code, False)
    assert e.kind in PROXY_ERROR_KINDS and e.proxy == "127.0.0.1:9050"
    assert not hs.done


def test_refused_credentials() -> None:
    hs = Socks5Handshake("a.example", 1, ("u", "p"))
    hs.start()
    hs.receive(b"\x05\x02")
    with pytest.raises(ProxyError) as ei:
        hs.receive(b"\x01\x01")
    assert (ei.value.kind, ei.value.message) == ("auth-failed", "Proxy authentication unsuccessful")


@pytest.mark.parametrize(
    ("host", "port", "credentials", "kind"),
    [
        ("a" * 256, 8333, None, "invalid-destination"),
        ("a..b", 8333, None, "invalid-destination"),
        ("", 8333, None, "invalid-destination"),
        ("x\0y", 8333, None, "invalid-destination"),
        ("127.0.0.1", 70000, None, "invalid-destination"),
        ("127.0.0.1", 8333, ("", "p"), "invalid-credentials"),
        ("127.0.0.1", 8333, ("u", "p" * 256), "invalid-credentials"),
        ("127.0.0.1", 8333, ("ü", "p"), "invalid-credentials"),
    ],
)
def test_unsendable_requests_are_refused_before_anything_is_sent(
    host: str, port: int, credentials: tuple[str, str] | None, kind: str
) -> None:
    with pytest.raises(ProxyError) as ei:
        Socks5Handshake(host, port, credentials)
    assert ei.value.kind == kind


def test_caller_bugs_are_value_errors() -> None:
    hs = Socks5Handshake("a.example", 1)
    with pytest.raises(ValueError):
        hs.receive(b"\x05")  # before start()
    hs.start()
    with pytest.raises(ValueError):
        hs.receive(b"\x05\x00\x05")  # more than is due: those bytes would be the tunnel's
    with pytest.raises(RuntimeError):
        hs.start()


@given(st.binary(min_size=0, max_size=40))
def test_any_proxy_answer_ends_in_done_an_error_or_a_wait(junk: bytes) -> None:
    """Arbitrary bytes from a proxy never crash the client: each chunk is consumed,
    raises ProxyError, or leaves it waiting for more."""
    hs = Socks5Handshake("a.example", 1, ("u", "p"))
    hs.start()
    data = junk
    try:
        while data and not hs.done:
            take, data = data[: hs.need], data[hs.need :]
            hs.receive(take)
    except ProxyError as e:
        assert e.kind in PROXY_ERROR_KINDS
    else:
        assert hs.done or hs.need > 0
