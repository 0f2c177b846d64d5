"""Bitcoin Core's help for the RPC methods a peerkeeper node serves.

Core documents each RPC method in its definition (``RPCMethod``, formerly
``RPCHelpMan``): a description, the arguments (name, type, whether optional or the
default, description, nested members), the results (type, key, description, nested
fields) and examples. ``help`` lists the methods by category, one synopsis line each;
``help METHOD`` prints the whole text. :data:`METHODS` transcribes those definitions for
our methods, with the category each is registered under, and :func:`help_listing` /
:func:`help_text` lay them out byte for byte as Core does.

Sources: the definitions in src/rpc/net.cpp, src/rpc/node.cpp, src/rpc/server.cpp,
src/rpc/blockchain.cpp, src/rpc/mempool.cpp, src/rpc/mining.cpp and
src/rpc/rawtransaction_util.cpp (``TxDoc``); the layout in src/rpc/util.cpp
(``RPCMethod::ToString``, ``Sections``, ``RPCArg::ToString``/``ToStringObj``/
``ToDescriptionString``, ``RPCResult::ToSections``, ``HelpExampleCli``/``Rpc``) and
src/rpc/server.cpp (``CRPCTable::help``).

The help is the one Core prints with its default options: deprecated fields that need
``-deprecatedrpc`` (the string ``warnings``, ``fullrbf``, ``bip125-replaceable``) are
left out, as Core leaves them out. ``CLIENT_NAME`` is ours ("peerkeeper"), as a Core
built under another name would print it (``stop``'s result, ``generatetoaddress``'s
example). The list of logging categories in ``logging`` is ours (the categories our
``logging`` accepts). ``getnetmsgstats`` is not in Core: its entry follows Core PR #29418
("rpc: provide per message stats for global traffic via new RPC 'getnetmsgstats'"),
described in our words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from peerkeeper.daemon.debuglog import CORE_CATEGORIES, OWN_CATEGORIES
from peerkeeper.daemon.netinfo import univalue_write
from peerkeeper.net.netpermissions import NET_PERMISSIONS_DOC

__all__ = [
    "CLIENT_NAME",
    "METHODS",
    "Arg",
    "Default",
    "DefaultHint",
    "Example",
    "MethodHelp",
    "Result",
    "help_listing",
    "help_text",
]

#: Core's ``CLIENT_NAME``, in help strings that name the server.
CLIENT_NAME = "peerkeeper"

ArgType = Literal[
    "OBJ", "ARR", "STR", "NUM", "BOOL", "OBJ_NAMED_PARAMS", "OBJ_USER_KEYS", "AMOUNT",
    "STR_HEX", "RANGE",
]  # fmt: skip
ResultType = Literal[
    "OBJ", "ARR", "STR", "NUM", "BOOL", "NONE", "ANY", "STR_AMOUNT", "STR_HEX", "OBJ_DYN",
    "ARR_FIXED", "NUM_TIME",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class DefaultHint:
    """Core's ``RPCArg::DefaultHint``: an optional argument whose default is described
    in words ("set by -v2transport")."""

    text: str


@dataclass(frozen=True, slots=True)
class Default:
    """Core's ``RPCArg::Default``: an optional argument with a JSON default value
    (arrays as tuples)."""

    value: Any


#: ``"required"`` is Core's ``RPCArg::Optional::NO``; ``"omitted"`` its ``OMITTED``
#: (optional, no default shown).
Fallback = Literal["required", "omitted"] | DefaultHint | Default


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument (Core's ``RPCArg``): ``names`` may hold aliases (``"verbosity|verbose"``);
    ``inner`` are the members of an array or object; ``oneline`` replaces the synopsis
    form; ``type_str`` (key-value type, description type) replaces the type words;
    ``hidden`` arguments, and all after them, are left out of the help."""

    names: str
    type: ArgType
    fallback: Fallback
    description: str
    inner: tuple[Arg, ...] = ()
    oneline: str = ""
    type_str: tuple[str, str] | None = None
    hidden: bool = False

    @property
    def name(self) -> str:
        """The first name (Core's ``GetFirstName``)."""
        return self.names.split("|", 1)[0]

    @property
    def optional(self) -> bool:
        """Core's ``IsOptional``."""
        return self.fallback != "required"


@dataclass(frozen=True, slots=True)
class Result:
    """One result or result field (Core's ``RPCResult``): ``key`` is the field's name in
    an object; ``cond`` names the case of one of several results ("for verbose = true");
    ``elision`` prints the field as ``...`` with that text, ``skip`` leaves it out (Core's
    ``HelpElision``)."""

    type: ResultType
    key: str
    description: str
    inner: tuple[Result, ...] = ()
    optional: bool = False
    cond: str = ""
    elision: str | None = None
    skip: bool = False


@dataclass(frozen=True, slots=True)
class Example:
    """One example line: ``kind`` ``"cli"`` (Core's ``HelpExampleCli``), ``"rpc"``
    (``HelpExampleRpc``, a curl call) or ``"text"`` (``text`` as it is)."""

    kind: Literal["cli", "rpc", "text"]
    method: str = ""
    args: str = ""
    text: str = ""

    def render(self, cli: str = "bitcoin-cli") -> str:
        """The line as src/rpc/util.cpp writes it."""
        if self.kind == "cli":
            return f"> {cli} {self.method} {self.args}\n"
        if self.kind == "rpc":
            return (
                '> curl --user myusername --data-binary \'{"jsonrpc": "2.0", "id": '
                f'"curltest", "method": "{self.method}", "params": [{self.args}]}}\' '
                "-H 'content-type: application/json' http://127.0.0.1:8332/\n"
            )
        return self.text


@dataclass(frozen=True, slots=True)
class MethodHelp:
    """One method's help: ``category`` is Core's registration category (``network``,
    ``control``, ``blockchain``, ``mining``, ``util``, ``hidden``...; ``help`` prints it
    capitalized, ``hidden`` methods are left out of the listing); ``source`` the Core
    file defining it."""

    name: str
    category: str
    description: str
    args: tuple[Arg, ...]
    results: tuple[Result, ...]
    examples: tuple[Example, ...]
    source: str
    title: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", _capitalize(self.category))

    def synopsis(self) -> str:
        """The one-line summary, ``addnode "node" "command" ( v2transport )``."""
        return _synopsis(self)

    def text(self, cli: str = "bitcoin-cli") -> str:
        """The full ``help METHOD`` text (src/rpc/util.cpp ``RPCMethod::ToString``)."""
        return _to_string(self, cli)


def help_listing(names: Iterable[str]) -> str:
    """Core's ``help`` without argument (src/rpc/server.cpp ``CRPCTable::help``) for the
    methods ``names``: sorted by category then name, a ``== Category ==`` line before each
    category, one synopsis line per method, a blank line between categories, no final
    newline. Hidden methods and names without an entry in :data:`METHODS` are left out."""
    entries = sorted(
        (METHODS[n] for n in set(names) if n in METHODS), key=lambda m: m.category + m.name
    )
    out = ""
    category = ""
    for m in entries:
        if m.category == "hidden":
            continue
        if category != m.category:
            if category:
                out += "\n"
            category = m.category
            out += f"== {m.title} ==\n"
        out += m.synopsis() + "\n"
    if not out:
        out = "help: unknown command: \n"
    return out[:-1]


def help_text(name: str, *, cli: str = "bitcoin-cli", names: Iterable[str] | None = None) -> str:
    """Core's ``help NAME`` (src/rpc/server.cpp ``CRPCTable::help``,
    src/rpc/util.cpp ``RPCMethod::ToString``): synopsis, description, ``Arguments:``,
    ``Result:`` (one block per case), ``Examples:`` with ``cli`` lines (``bitcoin-cli``
    by default, as Core) and curl lines. For a method not in :data:`METHODS` (or not in
    ``names``, when given: the methods served), ``help: unknown command: NAME``."""
    served = None if names is None else set(names)
    method = METHODS.get(name)
    if method is None or (served is not None and name not in served):
        return f"help: unknown command: {name}"
    return method.text(cli)


# -- layout (src/rpc/util.cpp) ------------------------------------------------------------


def _capitalize(s: str) -> str:
    """Core's ``Capitalize``: the first character upper-cased (ASCII)."""
    return s[:1].upper() + s[1:] if s[:1].isascii() else s


def _trim(s: str) -> str:
    """Core's ``TrimString``: " \\f\\n\\r\\t\\v" off both ends."""
    return s.strip(" \f\n\r\t\v")


class _Sections:
    """Core's ``Sections``: (left, right) pairs, the right parts aligned."""

    def __init__(self) -> None:
        self.sections: list[list[str]] = []
        self.max_pad = 0

    def push_section(self, left: str, right: str) -> None:
        self.max_pad = max(self.max_pad, len(left))
        self.sections.append([left, right])

    def push(self, arg: Arg, indent: int = 5, outer: str = "NONE") -> None:
        """Core's ``Sections::Push``: the nested members of an argument."""
        pad = " " * indent
        pad_next = " " * (indent + 2)
        push_name = outer == "OBJ"
        top = outer == "NONE"
        if arg.type in ("STR_HEX", "STR", "NUM", "AMOUNT", "RANGE", "BOOL", "OBJ_NAMED_PARAMS"):
            if top:
                return
            left = pad
            if arg.type_str is not None and push_name:
                left += f'"{arg.names}": {arg.type_str[0]}'
            else:
                left += _arg_obj_string(arg, False) if push_name else _arg_string(arg, False)
            self.push_section(left + ",", _arg_description(arg, push_name))
        elif arg.type in ("OBJ", "OBJ_USER_KEYS"):
            right = "" if top else _arg_description(arg, push_name)
            self.push_section(pad + (f'"{arg.names}": ' if push_name else "") + "{", right)
            for inner in arg.inner:
                self.push(inner, indent + 2, "OBJ")
            if arg.type != "OBJ":
                self.push_section(pad_next + "...", "")
            self.push_section(pad + "}" + ("" if top else ","), "")
        else:  # ARR
            right = "" if top else _arg_description(arg, push_name)
            self.push_section(pad + (f'"{arg.names}": ' if push_name else "") + "[", right)
            for inner in arg.inner:
                self.push(inner, indent + 2, "ARR")
            self.push_section(pad_next + "...", "")
            self.push_section(pad + "]" + ("" if top else ","), "")

    def to_string(self) -> str:
        """Core's ``Sections::ToString``: each right part starts at the widest left part
        plus 4; its continuation lines are indented as much, leading spaces dropped."""
        out = ""
        pad = self.max_pad + 4
        for left, right in self.sections:
            if not right:
                out += left + "\n"
                continue
            out += left.ljust(pad)[:pad]
            text = ""
            begin = 0
            newline = right.find("\n")
            while True:
                text += right[begin:] if newline < 0 else right[begin:newline]
                if newline < 0:
                    break
                text += "\n" + " " * pad
                begin = _find_first_not_of_space(right, newline + 1)
                if begin < 0:
                    break
                newline = right.find("\n", begin + 1)
            out += text + "\n"
        return out


def _find_first_not_of_space(s: str, pos: int) -> int:
    for i in range(pos, len(s)):
        if s[i] != " ":
            return i
    return -1


def _arg_string(arg: Arg, oneline: bool) -> str:
    """Core's ``RPCArg::ToString``."""
    if oneline and arg.oneline:
        return arg.oneline
    if arg.type in ("STR_HEX", "STR"):
        return f'"{arg.name}"'
    if arg.type in ("NUM", "RANGE", "AMOUNT", "BOOL"):
        return arg.name
    if arg.type in ("OBJ", "OBJ_NAMED_PARAMS", "OBJ_USER_KEYS"):
        res = ",".join(_arg_obj_string(i, oneline) for i in arg.inner)
        return "{" + res + ("}" if arg.type == "OBJ" else ",...}")
    return "[" + "".join(_arg_string(i, oneline) + "," for i in arg.inner) + "...]"


def _arg_obj_string(arg: Arg, oneline: bool) -> str:
    """Core's ``RPCArg::ToStringObj``."""
    res = f'"{arg.name}":' + ("" if oneline else " ")
    simple = {
        "STR": '"str"',
        "STR_HEX": '"hex"',
        "NUM": "n",
        "RANGE": "n or [n,n]",
        "AMOUNT": "amount",
        "BOOL": "bool",
    }
    if arg.type in simple:
        return res + simple[arg.type]
    if arg.type == "ARR":
        return res + "[" + "".join(_arg_string(i, oneline) + "," for i in arg.inner) + "...]"
    raise ValueError(f"no object form for {arg.type}")  # Core: NONFATAL_UNREACHABLE


_ARG_TYPE_WORDS = {
    "STR_HEX": "string",
    "STR": "string",
    "NUM": "numeric",
    "AMOUNT": "numeric or string",
    "RANGE": "numeric or array",
    "BOOL": "boolean",
    "OBJ": "json object",
    "OBJ_NAMED_PARAMS": "json object",
    "OBJ_USER_KEYS": "json object",
    "ARR": "json array",
}


def _arg_description(arg: Arg, is_named_arg: bool) -> str:
    """Core's ``RPCArg::ToDescriptionString``: "(type, optional, default=...) text"."""
    out = "(" + (arg.type_str[1] if arg.type_str is not None else _ARG_TYPE_WORDS[arg.type])
    fallback = arg.fallback
    if isinstance(fallback, DefaultHint):
        out += ", optional, default=" + fallback.text
    elif isinstance(fallback, Default):
        out += ", optional, default=" + univalue_write(fallback.value)
    elif fallback == "omitted":
        if is_named_arg:
            out += ", optional"
    else:
        out += ", required"
    out += ")"
    if arg.type == "OBJ_NAMED_PARAMS":
        out += " Options object that can be used to pass named arguments, listed below."
    return out + (" " + arg.description if arg.description else "")


_RESULT_LEFT = {
    "ANY": ("xxx", "any"),
    "STR": ('"str"', "string"),
    "STR_AMOUNT": ("n", "numeric"),
    "STR_HEX": ('"hex"', "string"),
    "NUM": ("n", "numeric"),
    "NUM_TIME": ("xxx", "numeric"),
    "BOOL": ("true|false", "boolean"),
}


def _result_sections(
    res: Result, sections: _Sections, outer: str = "NONE", indent: int = 0
) -> None:
    """Core's ``RPCResult::ToSections``."""
    pad = " " * indent
    pad_next = " " * (indent + 2)
    sep = "," if outer != "NONE" else ""
    key = f'"{res.key}" : ' if outer == "OBJ" else ""

    def describe(type_words: str) -> str:
        return f"({type_words}{', optional' if res.optional else ''})" + (
            " " + res.description if res.description else ""
        )

    if res.elision is not None:
        sections.push_section(pad + "..." + sep, res.elision)
        return
    if res.skip:
        return
    if res.type in _RESULT_LEFT:
        left, words = _RESULT_LEFT[res.type]
        sections.push_section(pad + key + left + sep, describe(words))
    elif res.type == "NONE":
        sections.push_section(pad + "null" + sep, describe("json null"))
    elif res.type in ("ARR", "ARR_FIXED"):
        sections.push_section(pad + key + "[", describe("json array"))
        for inner in res.inner:
            _result_sections(inner, sections, "ARR", indent + 2)
        if res.type == "ARR" and res.inner[-1].elision is None:
            sections.push_section(pad_next + "...", "")
        else:
            sections.sections[-1][0] = sections.sections[-1][0][:-1]  # the final comma
        sections.push_section(pad + "]" + sep, "")
    elif not res.inner:  # OBJ, OBJ_DYN
        sections.push_section(pad + key + "{}", describe("empty JSON object"))
    else:
        sections.push_section(pad + key + "{", describe("json object"))
        for inner in res.inner:
            _result_sections(inner, sections, "OBJ", indent + 2)
        if res.type == "OBJ_DYN":
            sections.push_section(pad_next + "...", "")
        else:
            sections.sections[-1][0] = sections.sections[-1][0][:-1]  # the final comma
        sections.push_section(pad + "}" + sep, "")


def _visible_args(m: MethodHelp) -> list[Arg]:
    visible = []
    for arg in m.args:
        if arg.hidden:
            break  # any argument that follows is hidden too
        visible.append(arg)
    return visible


def _synopsis(m: MethodHelp) -> str:
    out = m.name
    was_optional = False
    for arg in _visible_args(m):
        out += " "
        if arg.optional:
            if not was_optional:
                out += "( "
            was_optional = True
        else:
            if was_optional:
                out += ") "
            was_optional = False
        out += _arg_string(arg, True)
    if was_optional:
        out += " )"
    return out


def _to_string(m: MethodHelp, cli: str) -> str:
    out = _synopsis(m) + "\n\n" + _trim(m.description) + "\n"
    sections = _Sections()
    named_only = _Sections()
    for i, arg in enumerate(_visible_args(m)):
        left = f"{i + 1}. {arg.name}"
        sections.sections.append([left, _arg_description(arg, True)])
        sections.max_pad = max(sections.max_pad, len(left))
        sections.push(arg)
        if arg.type == "OBJ_NAMED_PARAMS":
            for inner in arg.inner:
                named_only.push_section(inner.name, _arg_description(inner, True))
                named_only.push(inner)
    if sections.sections:
        out += "\nArguments:\n"
    out += sections.to_string()
    if named_only.sections:
        out += "\nNamed Arguments:\n"
    out += named_only.to_string()
    for res in m.results:
        res_sections = _Sections()
        _result_sections(res, res_sections)
        if not res_sections.sections:
            continue
        out += "\nResult:\n" if not res.cond else f"\nResult ({res.cond}):\n"
        out += res_sections.to_string()
    examples = "".join(e.render(cli) for e in m.examples)
    if examples:
        out += "\nExamples:\n" + examples
    return out


# -- Core's shared strings ---------------------------------------------------------------

UNIX_EPOCH_TIME = "UNIX epoch time"  # src/rpc/util.cpp
CURRENCY_UNIT = "BTC"  # src/policy/feerate.h
LIST_CHAIN_NAMES = "main, test, testnet4, signet, regtest"  # src/chainparamsbase.h
MAX_ADDNODE_CONNECTIONS = 8  # src/net.h
DEFAULT_MAX_TRIES = 1_000_000  # src/rpc/mining.h
NET_MESSAGE_TYPE_OTHER = "*other*"  # src/net.cpp
#: GetNetworkNames() (src/netbase.cpp): the routable networks.
_NETWORK_NAMES = ", ".join(("ipv4", "ipv6", "onion", "i2p", "cjdns"))
#: src/rpc/net.cpp
CONNECTION_TYPE_DOC = (
    "outbound-full-relay (default automatic connections)",
    "block-relay-only (does not relay transactions or addresses)",
    "inbound (initiated by the peer)",
    "manual (added via addnode RPC or -addnode/-connect configuration options)",
    "addr-fetch (short-lived automatic connection for soliciting addresses)",
    "feeler (short-lived automatic connection for testing addresses)",
    "private-broadcast (short-lived automatic connection for broadcasting privacy-sensitive transactions)",
)
TRANSPORT_TYPE_DOC = (
    "detecting (peer could be v1 or v2)",
    "v1 (plaintext transport protocol)",
    "v2 (BIP324 encrypted transport protocol)",
)
#: GetAllOutputTypes() (src/rpc/util.cpp, TxoutType order in src/script/solver.h).
_OUTPUT_TYPES = ", ".join(
    (
        "nonstandard",
        "anchor",
        "pubkey",
        "pubkeyhash",
        "scripthash",
        "multisig",
        "nulldata",
        "witness_v0_scripthash",
        "witness_v0_keyhash",
        "witness_v1_taproot",
        "witness_unknown",
    )
)


# -- table helpers ------------------------------------------------------------------------


def _a(
    names: str,
    type_: ArgType,
    fallback: Fallback,
    description: str,
    inner: tuple[Arg, ...] = (),
    *,
    hidden: bool = False,
) -> Arg:
    return Arg(names, type_, fallback, description, inner, hidden=hidden)


def _r(
    type_: ResultType,
    key: str,
    description: str,
    inner: tuple[Result, ...] = (),
    *,
    optional: bool = False,
    cond: str = "",
) -> Result:
    return Result(type_, key, description, inner, optional=optional, cond=cond)


def _cli(method: str, args: str = "") -> Example:
    return Example("cli", method, args)


def _rpc(method: str, args: str = "") -> Example:
    return Example("rpc", method, args)


def _both(method: str, args: str = "", rpc_args: str | None = None) -> tuple[Example, ...]:
    return (_cli(method, args), _rpc(method, args if rpc_args is None else rpc_args))


def _none_result() -> tuple[Result, ...]:
    return (_r("NONE", "", ""),)


def _elide(
    fields: tuple[Result, ...], summary: str, keep: Iterable[str] = ()
) -> tuple[Result, ...]:
    """The first field printed as ``...`` with ``summary``, the others skipped, those
    named in ``keep`` untouched (Core's ``ElideGroup`` and the loops of ``TxDoc`` and
    ``GetBlockFields``)."""
    kept = set(keep)
    out = []
    first = True
    for f in fields:
        if f.key in kept:
            out.append(f)
        elif first:
            out.append(replace(f, elision=summary))
            first = False
        else:
            out.append(replace(f, skip=True))
    return tuple(out)


def _skip_all(fields: tuple[Result, ...], keep: Iterable[str] = ()) -> tuple[Result, ...]:
    kept = set(keep)
    return tuple(f if f.key in kept else replace(f, skip=True) for f in fields)


def _script_pubkey_doc() -> tuple[Result, ...]:
    """``ScriptPubKeyDoc()`` (src/rpc/util.cpp)."""
    return (
        _r("STR", "asm", "Disassembly of the output script"),
        _r("STR", "desc", "Inferred descriptor for the output"),
        _r("STR_HEX", "hex", "The raw output script bytes, hex-encoded"),
        _r(
            "STR",
            "address",
            "The Bitcoin address (only if a well-defined address exists)",
            optional=True,
        ),
        _r("STR", "type", f"The type (one of: {_OUTPUT_TYPES})"),
    )


def _tx_doc(
    *,
    elision: Literal["summary", "silent"],
    summary: str = "",
    prevout: bool = False,
    prevout_optional: bool = False,
    fee_doc: str = "",
    vin_item_doc: str | None = None,
    prevout_doc: str | None = None,
    vin_inner_elision: str | None = None,
) -> tuple[Result, ...]:
    """``TxDoc`` (src/rpc/rawtransaction_util.cpp) with ``fee`` and ``hex``, for
    ``getblock``'s verbosities 2 and 3."""
    vin_inner: tuple[Result, ...] = (
        _r(
            "STR_HEX",
            "coinbase",
            "The coinbase value (only if coinbase transaction)",
            optional=True,
        ),
        _r("STR_HEX", "txid", "The transaction id (if not coinbase transaction)", optional=True),
        _r("NUM", "vout", "The output number (if not coinbase transaction)", optional=True),
        _r(
            "OBJ",
            "scriptSig",
            "The script (if not coinbase transaction)",
            (
                _r("STR", "asm", "Disassembly of the signature script"),
                _r("STR_HEX", "hex", "The raw signature script bytes, hex-encoded"),
            ),
            optional=True,
        ),
        _r(
            "ARR",
            "txinwitness",
            "",
            (_r("STR_HEX", "hex", "hex-encoded witness data (if any)"),),
            optional=True,
        ),
    )
    if prevout:
        vin_inner += (
            _r(
                "OBJ",
                "prevout",
                prevout_doc or "The previous output, omitted if block undo data is not available",
                (
                    _r("BOOL", "generated", "Coinbase or not"),
                    _r("NUM", "height", "The height of the prevout"),
                    _r("STR_AMOUNT", "value", f"The value in {CURRENCY_UNIT}"),
                    _r("OBJ", "scriptPubKey", "", _script_pubkey_doc()),
                ),
                optional=prevout_optional,
            ),
        )
    vin_inner += (_r("NUM", "sequence", "The script sequence number"),)
    if vin_inner_elision is not None:
        vin_inner = _elide(vin_inner, vin_inner_elision, ("prevout",) if prevout else ())
    vin_doc = (
        (vin_item_doc if vin_item_doc is not None else "utxo being spent")
        if vin_inner_elision is not None
        else ""
    )
    fields: tuple[Result, ...] = (
        _r("STR_HEX", "txid", "The transaction id"),
        _r("STR_HEX", "hash", "The transaction hash (differs from txid for witness transactions)"),
        _r("NUM", "size", "The serialized transaction size"),
        _r(
            "NUM",
            "vsize",
            "The virtual transaction size (differs from size for witness transactions)",
        ),
        _r("NUM", "weight", "The transaction's weight (between vsize*4-3 and vsize*4)"),
        _r("NUM", "version", "The version"),
        _r("NUM_TIME", "locktime", "The lock time"),
        _r("ARR", "vin", "", (_r("OBJ", "", vin_doc, vin_inner),)),
        _r(
            "ARR",
            "vout",
            "",
            (
                _r(
                    "OBJ",
                    "",
                    "",
                    (
                        _r("STR_AMOUNT", "value", f"The value in {CURRENCY_UNIT}"),
                        _r("NUM", "n", "index"),
                        _r("OBJ", "scriptPubKey", "", _script_pubkey_doc()),
                    ),
                ),
            ),
        ),
        _r("NUM", "fee", fee_doc, optional=True),
        _r("STR_HEX", "hex", "The hex-encoded transaction data"),
    )
    keep = ["vin"] if vin_inner_elision is not None else []
    if elision == "silent":
        return _skip_all(fields, keep)
    return _elide(fields, summary, [*keep, "fee"])


def _block_fields(tx: Result, elision: str | None = None) -> tuple[Result, ...]:
    """``GetBlockFields`` (src/rpc/blockchain.cpp)."""
    fields = (
        _r("STR_HEX", "hash", "the block hash (same as provided)"),
        _r("NUM", "confirmations", "The number of confirmations, or -1 if the block is not on the main chain"),
        _r("NUM", "size", "The block size"),
        _r("NUM", "strippedsize", "The block size excluding witness data"),
        _r("NUM", "weight", "The block weight as defined in BIP 141"),
        _r(
            "OBJ",
            "coinbase_tx",
            "Coinbase transaction metadata",
            (
                _r("NUM", "version", "The coinbase transaction version"),
                _r("NUM", "locktime", "The coinbase transaction's locktime (nLockTime)"),
                _r("NUM", "sequence", "The coinbase input's sequence number (nSequence)"),
                _r("STR_HEX", "coinbase", "The coinbase input's script"),
                _r(
                    "STR_HEX",
                    "witness",
                    "The coinbase input's first (and only) witness stack element, if present",
                    optional=True,
                ),
            ),
        ),
        _r("NUM", "height", "The block height or index"),
        _r("NUM", "version", "The block version"),
        _r("STR_HEX", "versionHex", "The block version formatted in hexadecimal"),
        _r("STR_HEX", "merkleroot", "The merkle root"),
        tx,
        _r("NUM_TIME", "time", f"The block time expressed in {UNIX_EPOCH_TIME}"),
        _r("NUM_TIME", "mediantime", f"The median block time expressed in {UNIX_EPOCH_TIME}"),
        _r("NUM", "nonce", "The nonce"),
        _r("STR_HEX", "bits", "nBits: compact representation of the block difficulty target"),
        _r("STR_HEX", "target", "The difficulty target"),
        _r("NUM", "difficulty", "The difficulty"),
        _r("STR_HEX", "chainwork", "Expected number of hashes required to produce the chain up to this block (in hex)"),
        _r("NUM", "nTx", "The number of transactions in the block"),
        _r("STR_HEX", "previousblockhash", "The hash of the previous block (if available)", optional=True),
        _r("STR_HEX", "nextblockhash", "The hash of the next block (if available)", optional=True),
    )  # fmt: skip
    return fields if elision is None else _elide(fields, elision, ("tx",))


def _mempool_entry_description() -> tuple[Result, ...]:
    """``MempoolEntryDescription()`` (src/rpc/mempool.cpp), without the deprecated
    ``bip125-replaceable``."""
    fees = f"denominated in {CURRENCY_UNIT}"
    return (
        _r("NUM", "vsize", "(DEPRECATED) Was previously erroneously described as the BIP 141 vsize, but is actually sigops-adjusted vsize.\n"
           "Use vsize_bip141 to actually get that behavior or switch to the explicit vsize_adjusted for retained behavior."),
        _r("NUM", "vsize_bip141", "Virtual transaction size as defined in BIP 141.\n"
           "This is different from actual serialized size for witness transactions as witness data is discounted."),
        _r("NUM", "vsize_adjusted", "Maximum of sigop-adjusted size (-bytespersigop) and virtual transaction size as defined in BIP 141."),
        _r("NUM", "weight", "transaction weight as defined in BIP 141."),
        _r("NUM_TIME", "time", "local time transaction entered pool in seconds since 1 Jan 1970 GMT"),
        _r("NUM", "height", "block height when transaction entered pool"),
        _r("NUM", "descendantcount", "number of in-mempool descendant transactions (including this one)"),
        _r("NUM", "descendantsize", "virtual transaction size of in-mempool descendants (including this one)"),
        _r("NUM", "ancestorcount", "number of in-mempool ancestor transactions (including this one)"),
        _r("NUM", "ancestorsize", "virtual transaction size of in-mempool ancestors (including this one)"),
        _r("NUM", "chunkweight", "sigops-adjusted weight (as defined in BIP 141 and modified by '-bytespersigop') of this transaction's chunk"),
        _r("STR_HEX", "wtxid", "hash of serialized transaction, including witness data"),
        _r("OBJ", "fees", "", (
            _r("STR_AMOUNT", "base", f"transaction fee, {fees}"),
            _r("STR_AMOUNT", "modified", f"transaction fee with fee deltas used for mining priority, {fees}"),
            _r("STR_AMOUNT", "ancestor", f"transaction fees of in-mempool ancestors (including this one) with fee deltas used for mining priority, {fees}"),
            _r("STR_AMOUNT", "descendant", f"transaction fees of in-mempool descendants (including this one) with fee deltas used for mining priority, {fees}"),
            _r("STR_AMOUNT", "chunk", f"transaction fees of chunk, {fees}"),
        )),
        _r("ARR", "depends", "unconfirmed transactions used as inputs for this transaction",
           (_r("STR_HEX", "transactionid", "parent transaction id"),)),
        _r("ARR", "spentby", "unconfirmed transactions spending outputs from this transaction",
           (_r("STR_HEX", "transactionid", "child transaction id"),)),
        _r("BOOL", "unbroadcast", "Whether this transaction is currently unbroadcast (initial broadcast not yet acknowledged by any peers)"),
    )  # fmt: skip


def _warnings_result() -> Result:
    """``warnings`` without ``-deprecatedrpc=warnings``: an array."""
    return _r(
        "ARR",
        "warnings",
        "any network and blockchain warnings (run with `-deprecatedrpc=warnings` to return the latest warning as a single string)",
        (_r("STR", "", "warning"),),
    )


_BLOCK_HASH = '"00000000c937983704a73af28acdec37b049d214adbda81d7e2a3dd146f6ed09"'


# -- the methods -----------------------------------------------------------------------------


def _net_methods() -> list[MethodHelp]:
    """src/rpc/net.cpp"""
    src = "src/rpc/net.cpp"
    return [
        MethodHelp(
            "getconnectioncount",
            "network",
            "Returns the number of connections to other nodes.\n",
            (),
            (_r("NUM", "", "The connection count"),),
            _both("getconnectioncount"),
            src,
        ),
        MethodHelp(
            "ping",
            "network",
            "Requests that a ping be sent to all other nodes, to measure ping time.\n"
            "Results are provided in getpeerinfo.\n"
            "Ping command is handled in queue with all other commands, so it measures processing backlog, not just network ping.\n",
            (),
            _none_result(),
            _both("ping"),
            src,
        ),
        MethodHelp(
            "getpeerinfo",
            "network",
            "Returns data about each connected network peer as a json array of objects.",
            (),
            (_r("ARR", "", "", (_r("OBJ", "", "", _getpeerinfo_fields()),)),),
            _both("getpeerinfo"),
            src,
        ),
        MethodHelp(
            "addnode",
            "network",
            "Attempts to add or remove a node from the addnode list.\n"
            "Or try a connection to a node once.\n"
            "Nodes added using addnode (or -connect) are protected from DoS disconnection and are not required to be\n"
            "full nodes/support SegWit as other outbound peers are (though such peers will not be synced from).\n"
            f"Addnode connections are limited to {MAX_ADDNODE_CONNECTIONS} at a time"
            " and are counted separately from the -maxconnections limit.\n",
            (
                _a("node", "STR", "required", "The IP address/hostname optionally followed by :port of the peer to connect to"),
                _a("command", "STR", "required", "'add' to add a node to the list, 'remove' to remove a node from the list, 'onetry' to try a connection to the node once"),
                _a("v2transport", "BOOL", DefaultHint("set by -v2transport"), "Attempt to connect using BIP324 v2 transport protocol (ignored for 'remove' command)"),
            ),
            _none_result(),
            (
                _cli("addnode", '"192.168.0.6:8333" "onetry" true'),
                _rpc("addnode", '"192.168.0.6:8333", "onetry" true'),
            ),
            src,
        ),
        MethodHelp(
            "disconnectnode",
            "network",
            "Immediately disconnects from the specified peer node.\n"
            "\nStrictly one out of 'address' and 'nodeid' can be provided to identify the node.\n"
            "\nTo disconnect by nodeid, either set 'address' to the empty string, or call using the named 'nodeid' argument only.\n",
            (
                _a("address", "STR", DefaultHint("fallback to nodeid"), "The IP address/port of the node"),
                _a("nodeid", "NUM", DefaultHint("fallback to address"), "The node ID (see getpeerinfo for node IDs)"),
            ),
            _none_result(),
            (
                _cli("disconnectnode", '"192.168.0.6:8333"'),
                _cli("disconnectnode", '"" 1'),
                _rpc("disconnectnode", '"192.168.0.6:8333"'),
                _rpc("disconnectnode", '"", 1'),
            ),
            src,
        ),
        MethodHelp(
            "getaddednodeinfo",
            "network",
            "Returns information about the given added node, or all added nodes\n"
            "(note that onetry addnodes are not listed here)\n",
            (
                _a("node", "STR", DefaultHint("all nodes"), "If provided, return information about this specific node, otherwise all nodes are returned."),
            ),
            (
                _r("ARR", "", "", (
                    _r("OBJ", "", "", (
                        _r("STR", "addednode", "The node IP address or name (as provided to addnode)"),
                        _r("BOOL", "connected", "If connected"),
                        _r("ARR", "addresses", "Only when connected = true", (
                            _r("OBJ", "", "", (
                                _r("STR", "address", "The bitcoin server IP and port we're connected to"),
                                _r("STR", "connected", "connection, inbound or outbound"),
                            )),
                        )),
                    )),
                )),
            ),
            _both("getaddednodeinfo", '"192.168.0.201"'),
            src,
        ),
        MethodHelp(
            "getnettotals",
            "network",
            "Returns information about network traffic, including bytes in, bytes out,\n"
            "and current system time.",
            (),
            (
                _r("OBJ", "", "", (
                    _r("NUM", "totalbytesrecv", "Total bytes received"),
                    _r("NUM", "totalbytessent", "Total bytes sent"),
                    _r("NUM_TIME", "timemillis", f"Current system {UNIX_EPOCH_TIME} in milliseconds"),
                    _r("OBJ", "uploadtarget", "", (
                        _r("NUM", "timeframe", "Length of the measuring timeframe in seconds"),
                        _r("NUM", "target", "Target in bytes"),
                        _r("BOOL", "target_reached", "True if target is reached"),
                        _r("BOOL", "serve_historical_blocks", "True if serving historical blocks"),
                        _r("NUM", "bytes_left_in_cycle", "Bytes left in current time cycle"),
                        _r("NUM", "time_left_in_cycle", "Seconds left in current time cycle"),
                    )),
                )),
            ),
            _both("getnettotals"),
            src,
        ),
        MethodHelp(
            "getnetworkinfo",
            "network",
            "Returns an object containing various state info regarding P2P networking.\n",
            (),
            (_r("OBJ", "", "", _getnetworkinfo_fields()),),
            _both("getnetworkinfo"),
            src,
        ),
        MethodHelp(
            "setban",
            "network",
            "Attempts to add or remove an IP/Subnet from the banned list.\n",
            (
                _a("subnet", "STR", "required", "The IP/Subnet (see getpeerinfo for nodes IP) with an optional netmask (default is /32 = single IP)"),
                _a("command", "STR", "required", "'add' to add an IP/Subnet to the list, 'remove' to remove an IP/Subnet from the list"),
                _a("bantime", "NUM", Default(0), "time in seconds how long (or until when if [absolute] is set) the IP is banned (0 or empty means using the default time of 24h which can also be overwritten by the -bantime startup argument)"),
                _a("absolute", "BOOL", Default(False), f"If set, the bantime must be an absolute timestamp expressed in {UNIX_EPOCH_TIME}"),
            ),
            _none_result(),
            (
                _cli("setban", '"192.168.0.6" "add" 86400'),
                _cli("setban", '"192.168.0.0/24" "add"'),
                _rpc("setban", '"192.168.0.6", "add", 86400'),
            ),
            src,
        ),
        MethodHelp(
            "listbanned",
            "network",
            "List all manually banned IPs/Subnets.\n",
            (),
            (
                _r("ARR", "", "", (
                    _r("OBJ", "", "", (
                        _r("STR", "address", "The IP/Subnet of the banned node"),
                        _r("NUM_TIME", "ban_created", f"The {UNIX_EPOCH_TIME} the ban was created"),
                        _r("NUM_TIME", "banned_until", f"The {UNIX_EPOCH_TIME} the ban expires"),
                        _r("NUM_TIME", "ban_duration", "The ban duration, in seconds"),
                        _r("NUM_TIME", "time_remaining", "The time remaining until the ban expires, in seconds"),
                    )),
                )),
            ),
            _both("listbanned"),
            src,
        ),
        MethodHelp(
            "clearbanned",
            "network",
            "Clear all banned IPs.\n",
            (),
            _none_result(),
            _both("clearbanned"),
            src,
        ),
        MethodHelp(
            "setnetworkactive",
            "network",
            "Disable/enable all p2p network activity.\n",
            (_a("state", "BOOL", "required", "true to enable networking, false to disable"),),
            (_r("BOOL", "", "The value that was passed in"),),
            (),
            src,
        ),
        MethodHelp(
            "getnodeaddresses",
            "network",
            "Return known addresses, after filtering for quality and recency.\n"
            "These can potentially be used to find new peers in the network.\n"
            "The total number of addresses known to the node may be higher.",
            (
                _a("count", "NUM", Default(1), "The maximum number of addresses to return. Specify 0 to return all known addresses."),
                _a("network", "STR", DefaultHint("all networks"), f"Return only addresses of the specified network. Can be one of: {_NETWORK_NAMES}."),
            ),
            (
                _r("ARR", "", "", (
                    _r("OBJ", "", "", (
                        _r("NUM_TIME", "time", f"The {UNIX_EPOCH_TIME} when the node was last seen"),
                        _r("NUM", "services", "The services offered by the node"),
                        _r("STR", "address", "The address of the node"),
                        _r("NUM", "port", "The port number of the node"),
                        _r("STR", "network", f"The network ({_NETWORK_NAMES}) the node connected through"),
                    )),
                )),
            ),
            (
                _cli("getnodeaddresses", "8"),
                _cli("getnodeaddresses", '4 "i2p"'),
                _cli("-named getnodeaddresses", "network=onion count=12"),
                _rpc("getnodeaddresses", "8"),
                _rpc("getnodeaddresses", '4, "i2p"'),
            ),
            src,
        ),
        MethodHelp(
            "getaddrmaninfo",
            "network",
            "Provides information about the node's address manager by returning the number of "
            "addresses in the `new` and `tried` tables and their sum for all networks.\n",
            (),
            (
                _r("OBJ_DYN", "", "json object with network type as keys", (
                    _r("OBJ", "network", f"the network ({_NETWORK_NAMES}, all_networks)", (
                        _r("NUM", "new", "number of addresses in the new table, which represent potential peers the node has discovered but hasn't yet successfully connected to."),
                        _r("NUM", "tried", "number of addresses in the tried table, which represent peers the node has successfully connected to in the past."),
                        _r("NUM", "total", "total number of addresses in both new/tried tables"),
                    )),
                )),
            ),
            _both("getaddrmaninfo"),
            src,
        ),
        MethodHelp(
            "addconnection",
            "hidden",
            "Open an outbound connection to a specified node. This RPC is for testing only.\n",
            (
                _a("address", "STR", "required", "The IP address and port to attempt connecting to."),
                _a("connection_type", "STR", "required", 'Type of connection to open ("outbound-full-relay", "block-relay-only", "addr-fetch" or "feeler").'),
                _a("v2transport", "BOOL", "required", "Attempt to connect using BIP324 v2 transport protocol"),
            ),
            (
                _r("OBJ", "", "", (
                    _r("STR", "address", "Address of newly added connection."),
                    _r("STR", "connection_type", "Type of connection opened."),
                )),
            ),
            (
                _cli("addconnection", '"192.168.0.6:8333" "outbound-full-relay" true'),
                _rpc("addconnection", '"192.168.0.6:8333" "outbound-full-relay" true'),
            ),
            src,
        ),
        MethodHelp(
            "addpeeraddress",
            "hidden",
            "Add the address of a potential peer to an address manager table. This RPC is for testing only.",
            (
                _a("address", "STR", "required", "The IP address of the peer"),
                _a("port", "NUM", "required", "The port of the peer"),
                _a("tried", "BOOL", Default(False), "If true, attempt to add the peer to the tried addresses table"),
            ),
            (
                _r("OBJ", "", "", (
                    _r("BOOL", "success", "whether the peer address was successfully added to the address manager table"),
                    _r("STR", "error", "error description, if the address could not be added", optional=True),
                )),
            ),
            (
                _cli("addpeeraddress", '"1.2.3.4" 8333 true'),
                _rpc("addpeeraddress", '"1.2.3.4", 8333, true'),
            ),
            src,
        ),
        MethodHelp(
            "getrawaddrman",
            "hidden",
            "EXPERIMENTAL warning: this call may be changed in future releases.\n"
            "\nReturns information on all address manager entries for the new and tried tables.\n",
            (),
            (
                _r("OBJ_DYN", "", "", (
                    _r("OBJ_DYN", "table", "buckets with addresses in the address manager table ( new, tried )", (
                        _r("OBJ", "bucket/position", "the location in the address manager table (<bucket>/<position>)", (
                            _r("STR", "address", "The address of the node"),
                            _r("NUM", "mapped_as", "Mapped AS (Autonomous System) number at the end of the BGP route to the peer, used for diversifying peer selection (only displayed if the -asmap config option is set)", optional=True),
                            _r("NUM", "port", "The port number of the node"),
                            _r("STR", "network", f"The network ({_NETWORK_NAMES}) of the address"),
                            _r("NUM", "services", "The services offered by the node"),
                            _r("NUM_TIME", "time", f"The {UNIX_EPOCH_TIME} when the node was last seen"),
                            _r("STR", "source", "The address that relayed the address to us"),
                            _r("STR", "source_network", f"The network ({_NETWORK_NAMES}) of the source address"),
                            _r("NUM", "source_mapped_as", "Mapped AS (Autonomous System) number at the end of the BGP route to the source, used for diversifying peer selection (only displayed if the -asmap config option is set)", optional=True),
                        )),
                    )),
                )),
            ),
            _both("getrawaddrman"),
            src,
        ),
    ]  # fmt: skip


def _getpeerinfo_fields() -> tuple[Result, ...]:
    return (
        _r("NUM", "id", "Peer index"),
        _r("STR", "addr", "(host:port) The IP address/hostname optionally followed by :port of the peer"),
        _r("STR", "addrbind", "(ip:port) Bind address of the connection to the peer", optional=True),
        _r("STR", "addrlocal", "(ip:port) Local address as reported by the peer", optional=True),
        _r("STR", "network", f"Network ({_NETWORK_NAMES}, not_publicly_routable)"),
        _r("NUM", "mapped_as", "Mapped AS (Autonomous System) number at the end of the BGP route to the peer, used for diversifying\n"
           "peer selection (only displayed if the -asmap config option is set)", optional=True),
        _r("STR_HEX", "services", "The services offered"),
        _r("ARR", "servicesnames", "the services offered, in human-readable form",
           (_r("STR", "SERVICE_NAME", "the service name if it is recognised"),)),
        _r("BOOL", "relaytxes", "Whether we relay transactions to this peer"),
        _r("NUM", "last_inv_sequence", "Mempool sequence number of this peer's last INV"),
        _r("NUM", "inv_to_send", "How many txs we have queued to announce to this peer"),
        _r("NUM_TIME", "lastsend", f"The {UNIX_EPOCH_TIME} of the last send"),
        _r("NUM_TIME", "lastrecv", f"The {UNIX_EPOCH_TIME} of the last receive"),
        _r("NUM_TIME", "last_transaction", f"The {UNIX_EPOCH_TIME} of the last valid transaction received from this peer"),
        _r("NUM_TIME", "last_block", f"The {UNIX_EPOCH_TIME} of the last block received from this peer"),
        _r("NUM", "bytessent", "The total bytes sent"),
        _r("NUM", "bytesrecv", "The total bytes received"),
        _r("NUM_TIME", "conntime", f"The {UNIX_EPOCH_TIME} of the connection"),
        _r("NUM", "timeoffset", "The time offset in seconds"),
        _r("NUM", "pingtime", "The last ping time in seconds, if any", optional=True),
        _r("NUM", "minping", "The minimum observed ping time in seconds, if any", optional=True),
        _r("NUM", "pingwait", "The duration in seconds of an outstanding ping (if non-zero)", optional=True),
        _r("NUM", "version", "The peer version, such as 70001"),
        _r("STR", "subver", "The string version"),
        _r("BOOL", "inbound", "Inbound (true) or Outbound (false)"),
        _r("BOOL", "bip152_hb_to", "Whether we selected peer as (compact blocks) high-bandwidth peer"),
        _r("BOOL", "bip152_hb_from", "Whether peer selected us as (compact blocks) high-bandwidth peer"),
        _r("NUM", "presynced_headers", "The current height of header pre-synchronization with this peer, or -1 if no low-work sync is in progress"),
        _r("NUM", "synced_headers", "The last header we have in common with this peer"),
        _r("NUM", "synced_blocks", "The last block we have in common with this peer"),
        _r("ARR", "inflight", "", (_r("NUM", "n", "The heights of blocks we're currently asking from this peer"),)),
        _r("BOOL", "addr_relay_enabled", "Whether we participate in address relay with this peer"),
        _r("NUM", "addr_processed", "The total number of addresses processed, excluding those dropped due to rate limiting"),
        _r("NUM", "addr_rate_limited", "The total number of addresses dropped due to rate limiting"),
        _r("ARR", "permissions", "Any special permissions that have been granted to this peer",
           (_r("STR", "permission_type", ",\n".join(NET_PERMISSIONS_DOC) + ".\n"),)),
        _r("NUM", "minfeefilter", "The minimum fee rate for transactions this peer accepts"),
        _r("OBJ_DYN", "bytessent_per_msg", "", (
            _r("NUM", "msg", "The total bytes sent aggregated by message type\n"
               "When a message type is not listed in this json object, the bytes sent are 0.\n"
               "Only known message types can appear as keys in the object."),
        )),
        _r("OBJ_DYN", "bytesrecv_per_msg", "", (
            _r("NUM", "msg", "The total bytes received aggregated by message type\n"
               "When a message type is not listed in this json object, the bytes received are 0.\n"
               "Only known message types can appear as keys in the object and all bytes received\n"
               f"of unknown message types are listed under '{NET_MESSAGE_TYPE_OTHER}'."),
        )),
        _r("STR", "connection_type", "Type of connection: \n" + ",\n".join(CONNECTION_TYPE_DOC) + ".\n"
           "Please note this output is unlikely to be stable in upcoming releases as we iterate to\n"
           "best capture connection behaviors."),
        _r("STR", "transport_protocol_type", "Type of transport protocol: \n" + ",\n".join(TRANSPORT_TYPE_DOC) + ".\n"),
        _r("STR", "session_id", 'The session ID for this connection, or "" if there is none ("v2" transport protocol only).\n'),
    )  # fmt: skip


def _getnetworkinfo_fields() -> tuple[Result, ...]:
    return (
        _r("NUM", "version", "the server version"),
        _r("STR", "subversion", "the server subversion string"),
        _r("NUM", "protocolversion", "the protocol version"),
        _r("STR_HEX", "localservices", "the services we offer to the network"),
        _r("ARR", "localservicesnames", "the services we offer to the network, in human-readable form",
           (_r("STR", "SERVICE_NAME", "the service name"),)),
        _r("BOOL", "localrelay", "true if transaction relay is requested from peers"),
        _r("NUM", "timeoffset", "the time offset"),
        _r("NUM", "tx_send_rate", "configured target for maximum number of transactions per second to send to inbound peers"),
        _r("OBJ_DYN", "inv_buckets", "", (
            _r("OBJ", "inbound/outbound", "connection direction", (
                _r("NUM", "backlog", "number of queued txs to announce"),
                _r("NUM", "count_tok", "tokens available to be consumed per-transaction"),
                _r("NUM", "size_tok", "tokens available to be consumed per-byte"),
            )),
        )),
        _r("NUM", "connections", "the total number of connections"),
        _r("NUM", "connections_in", "the number of inbound connections"),
        _r("NUM", "connections_out", "the number of outbound connections"),
        _r("BOOL", "networkactive", "whether p2p networking is enabled"),
        _r("ARR", "networks", "information per network", (
            _r("OBJ", "", "", (
                _r("STR", "name", f"network ({_NETWORK_NAMES})"),
                _r("BOOL", "limited", "is the network limited using -onlynet?"),
                _r("BOOL", "reachable", "is the network reachable?"),
                _r("STR", "proxy", '("host:port") the proxy that is used for this network, or empty if none'),
                _r("BOOL", "proxy_randomize_credentials", "Whether randomized credentials are used"),
            )),
        )),
        _r("NUM", "relayfee", f"minimum relay fee rate for transactions in {CURRENCY_UNIT}/kvB"),
        _r("NUM", "incrementalfee", f"minimum fee rate increment for mempool limiting or replacement in {CURRENCY_UNIT}/kvB"),
        _r("ARR", "localaddresses", "list of local addresses", (
            _r("OBJ", "", "", (
                _r("STR", "address", "network address"),
                _r("NUM", "port", "network port"),
                _r("NUM", "score", "relative score"),
            )),
        )),
        _warnings_result(),
    )  # fmt: skip


def _getnetmsgstats() -> MethodHelp:
    """``getnetmsgstats`` as proposed in Core PR #29418 (not merged; our wording)."""
    leaf = (
        _r("NUM", "bytes", "Total number of bytes of these messages, message headers included"),
        _r("NUM", "count", "Number of these messages"),
    )
    by_type = _r("OBJ_DYN", "connection_type", "Connection type (unless aggregated)", (
        _r("OBJ", "message_type", "Message type, or *other* for unknown ones (unless aggregated)", leaf),
    ))  # fmt: skip
    by_network = _r("OBJ_DYN", "network", f"Network ({_NETWORK_NAMES}, not_publicly_routable) (unless aggregated)", (by_type,))  # fmt: skip
    by_direction = _r("OBJ_DYN", "direction", "sent or received (unless aggregated)", (by_network,))
    return MethodHelp(
        "getnetmsgstats",
        "network",
        "Returns the count and the total size in bytes of the P2P messages sent and received\n"
        "since the node started, the connections that are gone included, broken down by\n"
        "direction, network, connection type and message type.\n"
        "Each dimension named in aggregate_by is summed over and left out of the nesting;\n"
        "with all four, the result is the count and bytes of all messages.",
        (
            _a(
                "aggregate_by",
                "ARR",
                "omitted",
                "The dimensions to sum over",
                (
                    _a(
                        "aggregate_by",
                        "STR",
                        "omitted",
                        "direction, network, connection_type or message_type",
                    ),
                ),
            ),
        ),
        (
            _r(
                "OBJ_DYN",
                "",
                "Nested by the dimensions not aggregated, in this order",
                (by_direction,),
            ),
        ),
        (
            _cli("getnetmsgstats"),
            _cli("getnetmsgstats", '\'["direction", "network", "connection_type"]\''),
            _rpc("getnetmsgstats", '["network", "connection_type"]'),
        ),
        "Core PR #29418 (src/rpc/net.cpp)",
    )


def _logging_categories() -> str:
    """``LogInstance().LogCategoriesString()``: the categories our ``logging`` knows."""
    return ", ".join(sorted(CORE_CATEGORIES | OWN_CATEGORIES))


def _node_server_methods() -> list[MethodHelp]:
    """src/rpc/node.cpp and src/rpc/server.cpp"""
    node, server = "src/rpc/node.cpp", "src/rpc/server.cpp"
    echo_args = tuple(_a(f"arg{i}", "STR", "omitted", "") for i in range(10))
    return [
        MethodHelp(
            "setmocktime",
            "hidden",
            "Set the local time to given timestamp (-regtest only)\n",
            (
                _a("timestamp", "NUM", "required", UNIX_EPOCH_TIME + "\n"
                   "Pass 0 to go back to using the system time."),
            ),
            _none_result(),
            (),
            node,
        ),
        MethodHelp(
            "mockscheduler",
            "hidden",
            "Bump the scheduler into the future (-regtest only)\n",
            (_a("delta_time", "NUM", "required", "Number of seconds to forward the scheduler into the future."),),
            _none_result(),
            (),
            node,
        ),
        MethodHelp(
            "logging",
            "control",
            "Gets and sets the logging configuration.\n"
            "When called without an argument, returns the list of categories with status that are currently being debug logged or not.\n"
            "When called with arguments, adds or removes categories from debug logging and return the lists above.\n"
            'The arguments are evaluated in order "include", "exclude".\n'
            "If an item is both included and excluded, it will thus end up being excluded.\n"
            "The valid logging categories are: " + _logging_categories() + "\n"
            "In addition, the following are available as category names with special meanings:\n"
            '  - "all",  "1" : represent all logging categories.\n',
            (
                _a("include", "ARR", "omitted", "The categories to add to debug logging",
                   (_a("include_category", "STR", "omitted", "the valid logging category"),)),
                _a("exclude", "ARR", "omitted", "The categories to remove from debug logging",
                   (_a("exclude_category", "STR", "omitted", "the valid logging category"),)),
            ),
            (
                _r("OBJ_DYN", "", "keys are the logging categories, and values indicates its status",
                   (_r("BOOL", "category", "if being debug logged or not. false:inactive, true:active"),)),
            ),
            (
                _cli("logging", '"[\\"all\\"]" "[\\"http\\"]"'),
                _rpc("logging", '["all"], ["leveldb"]'),
            ),
            node,
        ),
        MethodHelp(
            "echo",
            "hidden",
            "Simply echo back the input arguments. This command is for testing.\n"
            "\nIt will return an internal bug report when arg9='trigger_internal_bug' is passed.\n"
            "\nThe difference between echo and echojson is that echojson has argument conversion enabled in the client-side table in "
            "bitcoin-cli and the GUI. There is no server-side difference.",
            echo_args,
            (_r("ANY", "", "Returns whatever was passed in"),),
            (),
            node,
        ),
        MethodHelp(
            "getrpcinfo",
            "control",
            "Returns details of the RPC server.\n",
            (),
            (
                _r("OBJ", "", "", (
                    _r("ARR", "active_commands", "All active commands", (
                        _r("OBJ", "", "Information about an active command", (
                            _r("STR", "method", "The name of the RPC command"),
                            _r("NUM", "duration", "The running time in microseconds"),
                        )),
                    )),
                    _r("STR", "logpath", "The complete file path to the debug log"),
                )),
            ),
            _both("getrpcinfo"),
            server,
        ),
        MethodHelp(
            "help",
            "control",
            "List all commands, or get help for a specified command.\n",
            (_a("command", "STR", DefaultHint("all commands"), "The command to get help on"),),
            (
                _r("STR", "", "The help text"),
                Result("ANY", "", "The command conversions. (Hidden in dump_all_command_conversions)", skip=True),
            ),
            (),
            server,
        ),
        MethodHelp(
            "stop",
            "control",
            f"Request a graceful shutdown of {CLIENT_NAME}.",
            (_a("wait", "NUM", "omitted", "how long to wait in ms", hidden=True),),
            (_r("STR", "", f"A string with the content '{CLIENT_NAME} stopping'"),),
            (),
            server,
        ),
        MethodHelp(
            "uptime",
            "control",
            "Returns the total uptime of the server.\n",
            (),
            (_r("NUM", "", "The number of seconds that the server has been running"),),
            _both("uptime"),
            server,
        ),
    ]  # fmt: skip


def _chain_methods() -> list[MethodHelp]:
    """src/rpc/blockchain.cpp, src/rpc/mempool.cpp, src/rpc/mining.cpp"""
    chain, mempool, mining = "src/rpc/blockchain.cpp", "src/rpc/mempool.cpp", "src/rpc/mining.cpp"
    return [
        MethodHelp(
            "getblockcount",
            "blockchain",
            "Returns the height of the most-work fully-validated chain.\n"
            "The genesis block has height 0.\n",
            (),
            (_r("NUM", "", "The current block count"),),
            _both("getblockcount"),
            chain,
        ),
        MethodHelp(
            "getbestblockhash",
            "blockchain",
            "Returns the hash of the best (tip) block in the most-work fully-validated chain.\n",
            (),
            (_r("STR_HEX", "", "the block hash, hex-encoded"),),
            _both("getbestblockhash"),
            chain,
        ),
        MethodHelp(
            "getchaintips",
            "blockchain",
            "Return information about all known tips in the block tree,"
            " including the main chain as well as orphaned branches.\n",
            (),
            (
                _r("ARR", "", "", (
                    _r("OBJ", "", "", (
                        _r("NUM", "height", "height of the chain tip"),
                        _r("STR_HEX", "hash", "block hash of the tip"),
                        _r("NUM", "branchlen", "zero for main chain, otherwise length of branch connecting the tip to the main chain"),
                        _r("STR", "status", "status of the chain, \"active\" for the main chain\n"
                           "Possible values for status:\n"
                           "1.  \"invalid\"               This branch contains at least one invalid block\n"
                           "2.  \"headers-only\"          Not all blocks for this branch are available, but the headers are valid\n"
                           "3.  \"valid-headers\"         All blocks are available for this branch, but they were never fully validated\n"
                           "4.  \"valid-fork\"            This branch is not part of the active chain, but is fully validated\n"
                           "5.  \"active\"                This is the tip of the active main chain, which is certainly valid"),
                    )),
                )),
            ),
            _both("getchaintips"),
            chain,
        ),
        MethodHelp(
            "waitforblockheight",
            "hidden",
            "Waits for (at least) block height and returns the height and hash\n"
            "of the current tip.\n"
            "\nReturns the current block on timeout or exit.\n"
            "\nMake sure to use no RPC timeout (bitcoin-cli -rpcclienttimeout=0)",
            (
                _a("height", "NUM", "required", "Block height to wait for."),
                _a("timeout", "NUM", Default(0), "Time in milliseconds to wait for a response. 0 indicates no timeout."),
            ),
            (
                _r("OBJ", "", "", (
                    _r("STR_HEX", "hash", "The blockhash"),
                    _r("NUM", "height", "Block height"),
                )),
            ),
            (_cli("waitforblockheight", "100 1000"), _rpc("waitforblockheight", "100, 1000")),
            chain,
        ),
        MethodHelp(
            "syncwithvalidationinterfacequeue",
            "hidden",
            "Waits for the validation interface queue to catch up on everything that was there when we entered this function.\n",
            (),
            _none_result(),
            _both("syncwithvalidationinterfacequeue"),
            chain,
        ),
        MethodHelp(
            "getblockhash",
            "blockchain",
            "Returns hash of block in best-block-chain at height provided.\n",
            (_a("height", "NUM", "required", "The height index"),),
            (_r("STR_HEX", "", "The block hash"),),
            _both("getblockhash", "1000"),
            chain,
        ),
        MethodHelp(
            "getblockheader",
            "blockchain",
            "If verbose is false, returns a string that is serialized, hex-encoded data for blockheader 'hash'.\n"
            "If verbose is true, returns an Object with information about blockheader <hash>.\n",
            (
                _a("blockhash", "STR_HEX", "required", "The block hash"),
                _a("verbose", "BOOL", Default(True), "true for a json object, false for the hex-encoded data"),
            ),
            (
                _r("OBJ", "", "", (
                    _r("STR_HEX", "hash", "the block hash (same as provided)"),
                    _r("NUM", "confirmations", "The number of confirmations, or -1 if the block is not on the main chain"),
                    _r("NUM", "height", "The block height or index"),
                    _r("NUM", "version", "The block version"),
                    _r("STR_HEX", "versionHex", "The block version formatted in hexadecimal"),
                    _r("STR_HEX", "merkleroot", "The merkle root"),
                    _r("NUM_TIME", "time", f"The block time expressed in {UNIX_EPOCH_TIME}"),
                    _r("NUM_TIME", "mediantime", f"The median block time expressed in {UNIX_EPOCH_TIME}"),
                    _r("NUM", "nonce", "The nonce"),
                    _r("STR_HEX", "bits", "nBits: compact representation of the block difficulty target"),
                    _r("STR_HEX", "target", "The difficulty target"),
                    _r("NUM", "difficulty", "The difficulty"),
                    _r("STR_HEX", "chainwork", "Expected number of hashes required to produce the current chain"),
                    _r("NUM", "nTx", "The number of transactions in the block"),
                    _r("STR_HEX", "previousblockhash", "The hash of the previous block (if available)", optional=True),
                    _r("STR_HEX", "nextblockhash", "The hash of the next block (if available)", optional=True),
                ), cond="for verbose = true"),
                _r("STR_HEX", "", "A string that is serialized, hex-encoded data for block 'hash'", cond="for verbose=false"),
            ),
            _both("getblockheader", _BLOCK_HASH),
            chain,
        ),
        MethodHelp(
            "getblock",
            "blockchain",
            "If verbosity is 0, returns a string that is serialized, hex-encoded data for block 'hash'.\n"
            "If verbosity is 1, returns an Object with information about block <hash>.\n"
            "If verbosity is 2, returns an Object with information about block <hash> and information about each transaction.\n"
            "If verbosity is 3, returns an Object with information about block <hash> and information about each transaction, including prevout information for inputs (only for unpruned blocks in the current best chain).\n",
            (
                _a("blockhash", "STR_HEX", "required", "The block hash"),
                _a("verbosity|verbose", "NUM", Default(1), "0 for hex-encoded data, 1 for a JSON object, 2 for JSON object with transaction data, and 3 for JSON object with transaction data including prevout information for inputs"),
            ),
            (
                _r("STR_HEX", "", "A string that is serialized, hex-encoded data for block 'hash'", cond="for verbosity = 0"),
                _r("OBJ", "", "", _block_fields(
                    _r("ARR", "tx", "The transaction ids", (_r("STR_HEX", "", "The transaction id"),))
                ), cond="for verbosity = 1"),
                _r("OBJ", "", "", _block_fields(
                    _r("ARR", "tx", "", (_r("OBJ", "", "", _tx_doc(
                        elision="summary",
                        summary='The transactions in the format of the getrawtransaction RPC. Different from verbosity = 1 "tx" result',
                        fee_doc=f"The transaction fee in {CURRENCY_UNIT}, omitted if block undo data is not available",
                    )),)),
                    "Same output as verbosity = 1",
                ), cond="for verbosity = 2"),
                _r("OBJ", "", "", _block_fields(
                    _r("ARR", "tx", "", (_r("OBJ", "", "", _tx_doc(
                        elision="silent",
                        prevout=True,
                        prevout_optional=True,
                        fee_doc=f"transaction fee in {CURRENCY_UNIT}, omitted if block undo data is not available",
                        vin_item_doc="",
                        prevout_doc="(Only if undo information is available)",
                        vin_inner_elision="The same output as verbosity = 2",
                    )),)),
                    "Same output as verbosity = 2",
                ), cond="for verbosity = 3"),
            ),
            _both("getblock", _BLOCK_HASH),
            chain,
        ),
        MethodHelp(
            "getblockchaininfo",
            "blockchain",
            "Returns an object containing various state info regarding blockchain processing.\n",
            (),
            (
                _r("OBJ", "", "", (
                    _r("STR", "chain", f"current network name ({LIST_CHAIN_NAMES})"),
                    _r("NUM", "blocks", "the height of the most-work fully-validated chain. The genesis block has height 0"),
                    _r("NUM", "headers", "the current number of headers we have validated"),
                    _r("STR", "bestblockhash", "the hash of the currently best block"),
                    _r("STR_HEX", "bits", "nBits: compact representation of the block difficulty target"),
                    _r("STR_HEX", "target", "the difficulty target"),
                    _r("NUM", "difficulty", "the current difficulty"),
                    _r("NUM_TIME", "time", f"the block time expressed in {UNIX_EPOCH_TIME}"),
                    _r("NUM_TIME", "mediantime", f"the median block time expressed in {UNIX_EPOCH_TIME}"),
                    _r("NUM", "verificationprogress", "estimate of verification progress [0..1]"),
                    _r("BOOL", "initialblockdownload", "(debug information) estimate of whether this node is in Initial Block Download mode"),
                    _r("OBJ", "backgroundvalidation", "state info regarding background validation process", (
                        _r("NUM", "snapshotheight", "the height of the snapshot block. Background validation verifies the chain from genesis up to this height"),
                        _r("NUM", "blocks", "the height of the most-work background fully-validated chain. The genesis block has height 0"),
                        _r("STR", "bestblockhash", "the hash of the currently best block validated in the background"),
                        _r("NUM_TIME", "mediantime", f"the median block time expressed in {UNIX_EPOCH_TIME}"),
                        _r("NUM", "verificationprogress", "estimate of background verification progress [0..1]"),
                        _r("STR_HEX", "chainwork", "total amount of work in background validated chain, in hexadecimal"),
                    ), optional=True),
                    _r("STR_HEX", "chainwork", "total amount of work in active chain, in hexadecimal"),
                    _r("NUM", "size_on_disk", "the estimated size of the block and undo files on disk"),
                    _r("BOOL", "pruned", "if the blocks are subject to pruning"),
                    _r("NUM", "pruneheight", "the first block unpruned, all previous blocks were pruned (only present if pruning is enabled)", optional=True),
                    _r("BOOL", "automatic_pruning", "whether automatic pruning is enabled (only present if pruning is enabled)", optional=True),
                    _r("NUM", "prune_target_size", "the target size used by pruning (only present if automatic pruning is enabled)", optional=True),
                    _r("STR_HEX", "signet_challenge", "the block challenge (aka. block script), in hexadecimal (only present if the current network is a signet)", optional=True),
                    _warnings_result(),
                )),
            ),
            _both("getblockchaininfo"),
            chain,
        ),
        MethodHelp(
            "getrawmempool",
            "blockchain",
            "Returns all transaction ids in memory pool as a json array of string transaction ids.\n"
            "\nHint: use getmempoolentry to fetch a specific transaction from the mempool.\n",
            (
                _a("verbose", "BOOL", Default(False), "True for a json object, false for array of transaction ids"),
                _a("mempool_sequence", "BOOL", Default(False), "If verbose=false, returns a json object with transaction list and mempool sequence number attached."),
            ),
            (
                _r("ARR", "", "", (_r("STR_HEX", "", "The transaction id"),), cond="for verbose = false"),
                _r("OBJ_DYN", "", "", (_r("OBJ", "transactionid", "", _mempool_entry_description()),), cond="for verbose = true"),
                _r("OBJ", "", "", (
                    _r("ARR", "txids", "", (_r("STR_HEX", "", "The transaction id"),)),
                    _r("NUM", "mempool_sequence", "The mempool sequence value."),
                ), cond="for verbose = false and mempool_sequence = true"),
            ),
            _both("getrawmempool", "true"),
            mempool,
        ),
        MethodHelp(
            "getmempoolinfo",
            "blockchain",
            "Returns details on the active state of the TX memory pool.",
            (),
            (
                _r("OBJ", "", "", (
                    _r("BOOL", "loaded", "True if the initial load attempt of the persisted mempool finished"),
                    _r("NUM", "size", "Current tx count"),
                    _r("NUM", "bytes", "Sum of all virtual transaction sizes as defined in BIP 141. Differs from actual serialized size because witness data is discounted"),
                    _r("NUM", "usage", "Total memory usage for the mempool"),
                    _r("STR_AMOUNT", "total_fee", f"Total fees for the mempool in {CURRENCY_UNIT}, ignoring modified fees through prioritisetransaction"),
                    _r("NUM", "maxmempool", "Maximum memory usage for the mempool"),
                    _r("STR_AMOUNT", "mempoolminfee", f"Minimum fee rate in {CURRENCY_UNIT}/kvB for tx to be accepted. Is the maximum of minrelaytxfee and minimum mempool fee"),
                    _r("STR_AMOUNT", "minrelaytxfee", "Current minimum relay fee for transactions"),
                    _r("NUM", "incrementalrelayfee", f"minimum fee rate increment for mempool limiting or replacement in {CURRENCY_UNIT}/kvB"),
                    _r("NUM", "unbroadcastcount", "Current number of transactions that haven't passed initial broadcast yet"),
                    _r("BOOL", "permitbaremultisig", "True if the mempool accepts transactions with bare multisig outputs"),
                    _r("NUM", "maxdatacarriersize", "Maximum number of bytes that can be used by OP_RETURN outputs in the mempool"),
                    _r("NUM", "limitclustercount", "Maximum number of transactions that can be in a cluster (configured by -limitclustercount)"),
                    _r("NUM", "limitclustersize", "Maximum size of a cluster in virtual bytes (configured by -limitclustersize)"),
                    _r("BOOL", "optimal", "If the mempool is in a known-optimal transaction ordering"),
                )),
            ),
            _both("getmempoolinfo"),
            mempool,
        ),
        MethodHelp(
            "generatetoaddress",
            "hidden",
            "Mine to a specified address and return the block hashes.",
            (
                _a("nblocks", "NUM", "required", "How many blocks are generated."),
                _a("address", "STR", "required", "The address to send the newly generated bitcoin to."),
                _a("maxtries", "NUM", Default(DEFAULT_MAX_TRIES), "How many iterations to try."),
            ),
            (_r("ARR", "", "hashes of blocks generated", (_r("STR_HEX", "", "blockhash"),)),),
            (
                Example("text", text="\nGenerate 11 blocks to myaddress\n"),
                _cli("generatetoaddress", '11 "myaddress"'),
                Example("text", text=f"If you are using the {CLIENT_NAME} wallet, you can get a new address to send the newly generated bitcoin to with:\n"),
                _cli("getnewaddress"),
            ),
            mining,
        ),
        MethodHelp(
            "submitblock",
            "mining",
            "Attempts to submit new block to network.\n"
            "See https://en.bitcoin.it/wiki/BIP_0022 for full specification.\n",
            (
                _a("hexdata", "STR_HEX", "required", "the hex-encoded block data to submit"),
                _a("dummy", "STR", DefaultHint("ignored"), "dummy value, for compatibility with BIP22. This value is ignored."),
            ),
            (
                _r("NONE", "", "", cond="If the block was accepted"),
                _r("STR", "", "According to BIP22", cond="Otherwise"),
            ),
            _both("submitblock", '"mydata"'),
            mining,
        ),
    ]  # fmt: skip


#: Method name -> its help, for every RPC method a peerkeeper Bitcoin node serves.
METHODS: dict[str, MethodHelp] = {
    m.name: m
    for m in (*_net_methods(), _getnetmsgstats(), *_node_server_methods(), *_chain_methods())
}
