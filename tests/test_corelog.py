"""The compatibility table of Core's log lines (peerkeeper.wire.corelog).

Every line Core's functional tests look for in debug.log, in the tests peerkeeperd
passes, must be one peerkeeper can write: some template of the table produces text
containing it. Reads the tests from ../shared/core-functional (skipped when absent).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from peerkeeper.wire import corelog

FUNCTIONAL = Path(__file__).resolve().parents[2] / "shared" / "core-functional" / "test"
FUNCTIONAL = FUNCTIONAL / "functional"
_PLACEHOLDER = re.compile(r"%(?:\.\d+)?[sdufxi]")
#: Lines those tests look for that are not network events of the table: the daemon's
#: own banlist line lives in the table too, so nothing is exempt today.
EXEMPT: frozenset[str] = frozenset()


def templates() -> list[str]:
    """The table's lines, and each one as the reason of a disconnection (Core's
    ``reason, DisconnectMsg()``: ``corelog.REASON_THEN_DISCONNECT``)."""
    lines = [
        v
        for k, v in vars(corelog).items()
        if k.isupper() and isinstance(v, str) and _PLACEHOLDER.sub("", v).strip(" ,:")
    ]
    disconnecting = corelog.disconnect_msg(0, "").replace("0", "%d")
    return lines + [corelog.REASON_THEN_DISCONNECT % (t, disconnecting) for t in lines]


def _alternatives(options: list[str]) -> str:
    return "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))


def produces(template: str, wanted: str) -> bool:
    """Can an instance of ``template`` (a line Core writes) contain ``wanted``, with at
    least 40 % of ``wanted`` being the template's own words (placeholders, which match
    anything, cannot carry a match alone)?"""
    wanted = wanted.rstrip("\n")  # Core's lines end in a newline; ours too
    pieces = _PLACEHOLDER.split(template)
    if any(wanted in p for p in pieces if wanted):
        return True
    for first in range(len(pieces)):
        head = pieces[first]
        for last in range(first + 1, len(pieces)):
            tail = pieces[last]
            middle = pieces[first + 1 : last]
            pattern = (
                f"(?P<s>{_alternatives([head[k:] for k in range(len(head) + 1)])}).*?"
                + "".join(f"{re.escape(m)}.*?" for m in middle)
                + f"(?P<e>{_alternatives([tail[:k] for k in range(len(tail) + 1)])})"
            )
            m = re.fullmatch(pattern, wanted, re.S)
            if m is None:
                continue
            literal = len(m.group("s")) + len(m.group("e")) + sum(map(len, middle))
            if 5 * literal >= 2 * len(wanted):
                return True
    return False


def test_matching_rules() -> None:
    assert produces(corelog.RECEIVED, "received: addr (301 bytes) peer=1")
    assert produces(corelog.PONG, "pong peer=0: Nonce zero")
    assert produces(corelog.DROPPED_BANNED, "dropped (banned)\n")
    assert not produces(corelog.DROPPED_BANNED, "dropped (discouraged)")
    assert produces(corelog.DNS_WAITING, "Waiting 11 seconds before querying DNS seeds.\n")
    assert not produces(corelog.PONG, "ping timeout: 1201.000000s")
    assert produces(corelog.PING_TIMEOUT, "ping timeout: 1201.000000s")


def test_log_peer_and_disconnect_msg_follow_logips() -> None:
    assert corelog.disconnect_msg(3, "1.2.3.4:8333") == "disconnecting peer=3"
    corelog.set_log_ips(True)
    try:
        assert corelog.log_peer(3, "1.2.3.4:8333") == "peer=3, peeraddr=1.2.3.4:8333"
    finally:
        corelog.set_log_ips(False)


def _expected_lines(test: str) -> list[str]:
    """The string literals of ``assert_debug_log`` calls in a Core test (f-strings with
    their literal text only)."""
    tree = ast.parse((FUNCTIONAL / f"{test}.py").read_text())
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "assert_debug_log":
            lists = [*node.args, *(k.value for k in node.keywords if k.arg == "expected_msgs")]
            for lst in lists:
                for elt in getattr(lst, "elts", []):
                    if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                        out.append(elt.value)
    return out


@pytest.mark.skipif(not FUNCTIONAL.exists(), reason=f"Core's functional tests not at {FUNCTIONAL}")
def test_every_line_the_passing_core_tests_expect_is_in_the_table() -> None:
    from test_core_functional import PASSING

    table = templates()
    missing = [
        (test, line)
        for test in PASSING
        for line in _expected_lines(test)
        if line not in EXEMPT and not any(produces(t, line) for t in table)
    ]
    assert missing == []
    assert sum(len(_expected_lines(t)) for t in PASSING) >= 20  # the parse found them
