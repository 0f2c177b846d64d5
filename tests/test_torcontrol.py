"""The Tor control protocol core (peerkeeper.net.torcontrol): Core's torcontrol_tests.cpp
vectors for SplitTorReplyLine and ParseTorReplyMapping, the reply reader's limits, and
TorController's authentication and ADD_ONION flow against scripted replies."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from peerkeeper.net.torcontrol import (
    MAX_LINE_COUNT,
    MAX_LINE_LENGTH,
    TOR_SAFE_CLIENTKEY,
    TOR_SAFE_SERVERKEY,
    OnionProxy,
    OnionServiceAdded,
    ReconnectBackoff,
    ReplyReader,
    TorControlCore,
    TorControlError,
    TorReply,
    compute_response,
    parse_socks_listeners,
    parse_tor_reply_mapping,
    split_tor_reply_line,
)

# -- Core's src/test/torcontrol_tests.cpp ----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command", "args"),
    [
        ("PROTOCOLINFO PIVERSION", "PROTOCOLINFO", "PIVERSION"),
        (
            'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/home/x/.tor/control_auth_cookie"',
            "AUTH",
            'METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/home/x/.tor/control_auth_cookie"',
        ),
        ("AUTH METHODS=NULL", "AUTH", "METHODS=NULL"),
        ("AUTH METHODS=HASHEDPASSWORD", "AUTH", "METHODS=HASHEDPASSWORD"),
        (
            'VERSION Tor="0.2.9.8 (git-a0df013ea241b026)"',
            "VERSION",
            'Tor="0.2.9.8 (git-a0df013ea241b026)"',
        ),
        (
            "AUTHCHALLENGE SERVERHASH=aaaa SERVERNONCE=bbbb",
            "AUTHCHALLENGE",
            "SERVERHASH=aaaa SERVERNONCE=bbbb",
        ),
        ("COMMAND", "COMMAND", ""),
        ("COMMAND SOME  ARGS", "COMMAND", "SOME  ARGS"),
        ("COMMAND  ARGS", "COMMAND", " ARGS"),
        ("COMMAND   EVEN+more  ARGS", "COMMAND", "  EVEN+more  ARGS"),
    ],
)
def test_split_tor_reply_line(line: str, command: str, args: str) -> None:
    assert split_tor_reply_line(line) == (command, args)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/home/x/.tor/control_auth_cookie"',
            {"METHODS": "COOKIE,SAFECOOKIE", "COOKIEFILE": "/home/x/.tor/control_auth_cookie"},
        ),
        ("METHODS=NULL", {"METHODS": "NULL"}),
        ("METHODS=HASHEDPASSWORD", {"METHODS": "HASHEDPASSWORD"}),
        ('Tor="0.2.9.8 (git-a0df013ea241b026)"', {"Tor": "0.2.9.8 (git-a0df013ea241b026)"}),
        ("SERVERHASH=aaaa SERVERNONCE=bbbb", {"SERVERHASH": "aaaa", "SERVERNONCE": "bbbb"}),
        ("ServiceID=exampleonion1234", {"ServiceID": "exampleonion1234"}),
        ("PrivateKey=RSA1024:BLOB", {"PrivateKey": "RSA1024:BLOB"}),
        ("ClientAuth=bob:BLOB", {"ClientAuth": "bob:BLOB"}),
        ("Foo=Bar=Baz Spam=Eggs", {"Foo": "Bar=Baz", "Spam": "Eggs"}),
        ('Foo="Bar=Baz"', {"Foo": "Bar=Baz"}),
        ('Foo="Bar Baz"', {"Foo": "Bar Baz"}),
        ('Foo="Bar\\ Baz"', {"Foo": "Bar Baz"}),
        ('Foo="Bar\\Baz"', {"Foo": "BarBaz"}),
        ('Foo="Bar\\@Baz"', {"Foo": "Bar@Baz"}),
        ('Foo="Bar\\"Baz" Spam="\\"Eggs\\""', {"Foo": 'Bar"Baz', "Spam": '"Eggs"'}),
        ('Foo="Bar\\\\Baz"', {"Foo": "Bar\\Baz"}),
        (
            'Foo="Bar\\nBaz\\t" Spam="\\rEggs" '
            'Octals="\\1a\\11\\17\\18\\81\\377\\378\\400\\2222" Final=Check',
            {
                "Foo": "Bar\nBaz\t",
                "Spam": "\rEggs",
                "Octals": "\x01a\x09\x0f\x01881\xff\x1f8\x200\x922",  # Core's, in hex
                "Final": "Check",
            },
        ),
        ('Valid=Mapping Escaped="Escape\\\\"', {"Valid": "Mapping", "Escaped": "Escape\\"}),
        ('Valid=Mapping Bare="Escape\\"', {}),
        (
            'OneOctal="OneEnd\\1" TwoOctal="TwoEnd\\11"',
            {"OneOctal": "OneEnd\1", "TwoOctal": "TwoEnd\11"},
        ),
        ('Null="\\0"', {"Null": "\0"}),
        ("SOME=args,here MORE optional=arguments  here", {"SOME": "args,here"}),
        ("ARGS", {}),
        ("MORE ARGS", {}),
        ("MORE  ARGS", {}),
        ("EVEN more=ARGS", {}),
        ("EVEN+more ARGS", {}),
    ],
)
def test_parse_tor_reply_mapping(text: str, expected: dict[str, str]) -> None:
    assert parse_tor_reply_mapping(text) == expected


# -- the reply reader -----------------------------------------------------------------------


def test_replies_are_cut_at_a_space_separator_whatever_the_reads() -> None:
    wire = (
        b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n"
        b'250-VERSION Tor="0.4.8.10"\r\n250 OK\r\n'
        b"650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n"
        b"x\r\n"  # a short line: skipped
        b"250 OK\r\n"
    )
    for cut in range(1, len(wire)):
        r = ReplyReader()
        got = r.feed(wire[:cut]) + r.feed(wire[cut:])
        assert [(x.code, x.lines) for x in got] == [
            (250, ["PROTOCOLINFO 1", "AUTH METHODS=NULL", 'VERSION Tor="0.4.8.10"', "OK"]),
            (250, ["OK"]),
        ]
        assert [(e.code, e.lines) for e in r.events] == [
            (650, ["STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED"])
        ]


def test_an_endless_line_or_reply_is_refused_and_a_bad_code_reads_as_zero() -> None:
    r = ReplyReader()
    with pytest.raises(TorControlError):
        r.feed(b"250-" + b"a" * MAX_LINE_LENGTH)
    r = ReplyReader()
    with pytest.raises(TorControlError):
        r.feed(b"250-x\r\n" * (MAX_LINE_COUNT + 1))
    r = ReplyReader()
    assert [(x.code, x.lines) for x in r.feed(b"2x0 what\r\n")] == [(0, ["what"])]


# -- the controller -------------------------------------------------------------------------

TARGET = "127.0.0.1:8334"
COOKIE = bytes(range(32))
NONCE = bytes([7]) * 32
SERVER_NONCE = bytes([9]) * 32


def core(**kw: object) -> TorControlCore:
    files = kw.pop("files", {"/tor/cookie": COOKIE})
    return TorControlCore(
        TARGET,
        8333,
        read_cookie=lambda path: files.get(path),  # type: ignore[attr-defined]
        rng=lambda n: NONCE[:n],
        **kw,  # type: ignore[arg-type]
    )


def reply(code: int, *lines: str) -> TorReply:
    return TorReply(code, list(lines))


def test_null_auth_then_socks_and_a_new_onion_with_pow_then_without() -> None:
    c = core()
    assert c.connected() == ["PROTOCOLINFO 1"]
    assert c.received(reply(250, "PROTOCOLINFO 1", "AUTH METHODS=NULL", "OK")) == ["AUTHENTICATE"]
    assert c.received(reply(250, "OK")) == [
        "GETINFO net/listeners/socks",
        f"ADD_ONION NEW:ED25519-V3 PoWDefensesEnabled=1 Port=8333,{TARGET}",
    ]
    assert c.received(reply(250, 'net/listeners/socks="127.0.0.1:9050"', "OK")) == []
    assert c.poll_outcomes() == [OnionProxy("127.0.0.1:9050")]
    # An older Tor: 512 for the PoW flag, retried without it.
    assert c.received(reply(512, "Unrecognized option")) == [
        f"ADD_ONION NEW:ED25519-V3 Port=8333,{TARGET}"
    ]
    sid = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd"
    assert c.received(reply(250, f"ServiceID={sid}", "PrivateKey=ED25519-V3:KEY", "OK")) == []
    assert c.poll_outcomes() == [OnionServiceAdded(sid, "ED25519-V3:KEY")]
    assert c.service_id == sid


def test_a_cached_key_is_reused_and_no_socks_question_with_an_onion_proxy() -> None:
    c = core(private_key="ED25519-V3:OLD", onion_proxy_set=True)
    c.connected()
    c.received(reply(250, "AUTH METHODS=NULL", "OK"))
    assert c.received(reply(250, "OK")) == [
        f"ADD_ONION ED25519-V3:OLD PoWDefensesEnabled=1 Port=8333,{TARGET}"
    ]


def test_a_password_uses_hashedpassword_with_quotes_escaped() -> None:
    c = core(password='pa"ss')
    c.connected()
    assert c.received(reply(250, "AUTH METHODS=HASHEDPASSWORD,SAFECOOKIE", "OK")) == [
        'AUTHENTICATE "pa\\"ss"'
    ]


def test_safecookie_checks_the_servers_hash_then_answers_with_the_clients() -> None:
    c = core()
    c.connected()
    cmds = c.received(reply(250, 'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tor/cookie"', "OK"))
    assert cmds == [f"AUTHCHALLENGE SAFECOOKIE {NONCE.hex()}"]
    server_hash = hmac.new(
        TOR_SAFE_SERVERKEY, COOKIE + NONCE + SERVER_NONCE, hashlib.sha256
    ).digest()
    client_hash = compute_response(TOR_SAFE_CLIENTKEY, COOKIE, NONCE, SERVER_NONCE)
    line = f"AUTHCHALLENGE SERVERHASH={server_hash.hex()} SERVERNONCE={SERVER_NONCE.hex()}"
    assert c.received(reply(250, line)) == [f"AUTHENTICATE {client_hash.hex()}"]


def test_safecookie_refuses_a_wrong_server_hash_or_a_short_nonce(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for line, warning in [
        (
            f"AUTHCHALLENGE SERVERHASH={'00' * 32} SERVERNONCE={SERVER_NONCE.hex()}",
            "does not match",
        ),
        (f"AUTHCHALLENGE SERVERHASH={'00' * 32} SERVERNONCE=abcd", "not 32 bytes"),
        ("SOMETHING ELSE", "Invalid reply to AUTHCHALLENGE"),
    ]:
        c = core()
        c.connected()
        c.received(reply(250, 'AUTH METHODS=SAFECOOKIE COOKIEFILE="/tor/cookie"', "OK"))
        with caplog.at_level(logging.WARNING, logger="peerkeeper.tor"):
            assert c.received(reply(250, line)) == []
        assert warning in caplog.text
        caplog.clear()


@pytest.mark.parametrize(
    ("methods", "files", "password", "warning"),
    [
        ("SAFECOOKIE", {}, "", "could not be opened"),
        ("SAFECOOKIE", {"/tor/cookie": b"short"}, "", "is not exactly 32 bytes"),
        ("HASHEDPASSWORD", None, "", "no password provided"),
        ("COOKIE", None, "", "No supported authentication method"),
        ("NULL", None, "pw", "HASHEDPASSWORD authentication is not available"),
    ],
)
def test_no_usable_method_sends_nothing_and_says_why(
    methods: str,
    files: dict[str, bytes] | None,
    password: str,
    warning: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kw: dict[str, object] = {"password": password}
    if files is not None:
        kw["files"] = files
    c = core(**kw)
    c.connected()
    with caplog.at_level(logging.WARNING, logger="peerkeeper.tor"):
        assert c.received(reply(250, f'AUTH METHODS={methods} COOKIEFILE="/tor/cookie"')) == []
    assert warning in caplog.text


def test_failures_are_logged_and_end_the_exchange(caplog: pytest.LogCaptureFixture) -> None:
    c = core()
    c.connected()
    c.received(reply(250, "AUTH METHODS=NULL"))
    with caplog.at_level(logging.WARNING, logger="peerkeeper.tor"):
        assert c.received(reply(515, "Authentication failed")) == []
    assert "Authentication failed" in caplog.text
    c = core()
    c.connected()
    c.received(reply(250, "AUTH METHODS=NULL"))
    c.received(reply(250, "OK"))
    c.received(reply(552, "Unrecognized key"))  # GETINFO refused: Core falls back to 9050
    assert c.poll_outcomes() == [OnionProxy("127.0.0.1:9050")]
    assert c.received(reply(250, "PrivateKey=X", "OK")) == []  # no ServiceID
    assert c.poll_outcomes() == [] and c.service_id == ""


def test_a_reconnect_starts_over_and_forgets_the_service() -> None:
    c = core()
    c.connected()
    c.received(reply(250, "AUTH METHODS=NULL"))
    c.received(reply(250, "OK"))
    c.received(reply(250, "net/listeners/socks=127.0.0.1:9050"))
    c.received(reply(250, "ServiceID=abc", "PrivateKey=ED25519-V3:K"))
    c.disconnected()
    assert c.service_id == ""
    assert c.connected() == ["PROTOCOLINFO 1"]
    c.received(reply(250, "AUTH METHODS=NULL"))
    assert c.received(reply(250, "OK"))[-1].startswith("ADD_ONION ED25519-V3:K ")


def test_socks_listener_choice_follows_core() -> None:
    assert parse_socks_listeners(['net/listeners/socks="10.0.0.1:9050" "127.0.0.1:9150"']) == (
        "127.0.0.1:9150"
    )
    assert parse_socks_listeners(["net/listeners/socks='[::1]:9050' 10.0.0.2:9050"]) == (
        "10.0.0.2:9050"
    )
    assert parse_socks_listeners(['net/listeners/socks=""', "OK"]) == ""


def test_reconnect_backoff_grows_by_half_to_ten_minutes() -> None:
    b = ReconnectBackoff()
    waits = [b.failed() for _ in range(20)]
    assert waits[:4] == [1.0, 1.5, 2.25, 3.375]
    assert max(waits) == 600.0
    b.connected()
    assert b.failed() == 1.0
