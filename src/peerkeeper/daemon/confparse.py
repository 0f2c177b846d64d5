"""The line walk of a bitcoin.conf-style file, shared by the node and the light RPC client.

Standard library only, so ``peerkeeper rpc`` can read a conf file without importing the
node. The rules are Core's (src/common/config.cpp ``GetConfigOptions``,
src/common/args.cpp): ``#`` starts a comment, ``[chain]`` starts a section that applies
to that chain only, ``chain.key=value`` applies to that chain only, a leading ``-`` on
a key is dropped; without a chain given, the file's top section selects it
(``chain=``, ``regtest=1``, ``testnet4=1``, ``signet=1``, ``testnet=1``; default main).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["ConfLineError", "chain_in_file", "conf_items"]


class ConfLineError(ValueError):
    """A line that is not ``key=value`` (the message names the line number)."""


def chain_in_file(lines: list[str]) -> str:
    """The chain a conf file selects in its top section (``chain=``, ``regtest=1``, ...), else main."""
    chain = "main"
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            break
        key, _, value = (s.strip() for s in line.partition("="))
        if key == "chain":
            chain = value
        elif key in ("regtest", "testnet4", "signet") and value == "1":
            chain = key
        elif key == "testnet" and value == "1":
            chain = "test"
    return chain


def conf_items(lines: list[str], chain: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, key, value)`` of every setting that applies to ``chain``, in order.

    :raises ConfLineError: a non-empty line that is neither a section nor ``key=value``.
    """
    section: str | None = None
    for lineno, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if "=" not in line:
            raise ConfLineError(f"{lineno}: expected key=value")
        key, value = (s.strip() for s in line.split("=", 1))
        key = key.lstrip("-")
        if "." in key:
            section_key, key = key.split(".", 1)
            if section_key != chain:
                continue
        elif section is not None and section != chain:
            continue
        yield lineno, key, value
