"""Bitcoin Core's command line and bitcoin.conf semantics (``ArgsManager``), for peerkeeperd.

A faithful port of what ``bitcoind`` does with its arguments, so that a tool which
launches bitcoind (Core's functional test framework, scripts, service files) can launch
peerkeeperd the same way:

* the command line (src/common/args.cpp ``ParseParameters``): ``-name=value``,
  ``-name`` (an empty value, true for booleans), ``-noname`` (false), ``--name`` the
  same as ``-name``; an option that is not registered, or one with a ``section.``
  prefix, is ``Invalid parameter -foo``; ``-includeconf`` only as ``-noincludeconf``;
* the config file (src/common/config.cpp ``GetConfigOptions`` / ``ReadConfigStream`` /
  ``ReadConfigFiles``): ``name=value`` lines, ``#`` comments, ``[section]`` headers and
  ``section.name=value`` keys, ``includeconf`` from the file (not nested), Core's parse
  errors word for word;
* precedence (src/common/settings.cpp ``GetSetting`` / ``GetSettingsList``): the
  command line first (its last value wins), then the chain's section, then the default
  section (for the config file the *first* value wins); network-only options ignore
  the default section off mainnet; a negation drops what came before it, and list
  options keep config values after a negated-then-set command line (Core's "zombie"
  rule);
* the chain (``GetChainArg``): ``-regtest``, ``-testnet``, ``-testnet4``, ``-signet`` or
  ``-chain=``, at most one.

Values are kept as Core keeps them: a string, or ``False`` for a negation (``True`` for
a double negative such as ``-nofoo=0``). Errors are :class:`ArgsError` with Core's
message (bitcoind prints ``Error: <message>`` and exits 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ArgSpec", "ArgsError", "ArgsManager", "ChainError", "interpret_bool"]

#: The chain names ``-chain=`` accepts and their config sections (src/util/chaintype.cpp).
CHAIN_TYPES = ("main", "test", "testnet4", "signet", "regtest")

Value = str | bool


class ArgsError(ValueError):
    """An argument or config-file error; ``str()`` is Core's message (no ``Error:``)."""


class ChainError(ArgsError):
    """More than one chain chosen: Core throws this from ``GetChainTypeString`` and
    prints it unwrapped."""


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One registered option (Core ``AddArg``): ``name`` without the dash;
    ``network_only`` (Core ``NETWORK_ONLY``: off mainnet the config file's default
    section does not apply); ``disallow_negation`` / ``disallow_elision`` (Core's flags)."""

    name: str
    network_only: bool = False
    disallow_negation: bool = False
    disallow_elision: bool = False


def interpret_bool(value: str) -> bool:
    """Core ``InterpretBool``: empty is true, else the leading integer is non-zero
    (``LocaleIndependentAtoi``: optional sign, digits, anything after ignored)."""
    return value == "" or _atoi(value) != 0


def _split_key(key: str) -> tuple[str, str, bool]:
    """Core ``InterpretKey``: ``section.noname`` -> (section, name, negated)."""
    section = ""
    if "." in key:
        section, key = key.split(".", 1)
    negated = key.startswith("no")
    if negated:
        key = key[2:]
    return section, key, negated


class _Span:
    """Core ``SettingsSpan``: the values of one source, seen after the last negation."""

    __slots__ = ("values",)

    def __init__(self, values: Sequence[Value]) -> None:
        self.values = values

    def negated(self) -> int:
        for i in range(len(self.values), 0, -1):
            if self.values[i - 1] is False:
                return i
        return 0

    def last_negated(self) -> bool:
        return bool(self.values) and self.values[-1] is False

    def live(self) -> Sequence[Value]:
        return self.values[self.negated() :]

    def empty(self) -> bool:
        return not self.values or self.last_negated()


class ArgsManager:
    """Core's ``ArgsManager`` over a fixed set of :class:`ArgSpec`.

    ``parse_parameters(argv)``, then ``read_config_files(default_datadir)``, then read
    with :meth:`get_arg`, :meth:`get_args`, :meth:`get_bool_arg`, :meth:`get_int_arg`,
    :meth:`is_arg_set`, :meth:`is_arg_negated`; :meth:`chain` is the selected chain.
    Every method raises :class:`ArgsError` with Core's wording.
    """

    def __init__(self, specs: Iterable[ArgSpec]) -> None:
        self.specs = {s.name: s for s in specs}
        self.command_line: dict[str, list[Value]] = {}
        #: The first bare word of the command line and the words after it.
        self.commands: list[str] = []
        #: section ("" = default) -> name -> values, in file order.
        self.config: dict[str, dict[str, list[Value]]] = {}
        self.config_sections: list[tuple[str, str, int]] = []  # (section, file, line)
        #: Warnings Core logs (unknown config keys, nested includeconf).
        self.warnings: list[str] = []
        self._arg_warnings: list[str] = []
        self._ignore_invalid = False
        self._network: str | None = None

    # -- input ------------------------------------------------------------------------------

    def _value(self, name: str, negated: bool, value: str | None) -> Value:
        """Core ``InterpretValue``."""
        spec = self.specs[name]
        if negated:
            if spec.disallow_negation:
                raise ArgsError(f"Negating of -{name} is meaningless and therefore forbidden")
            # A double negative (-nofoo=0) is true, as Core (with its warning).
            if value is not None and not interpret_bool(value):
                self.warnings.append(
                    f"Parsed potentially confusing double-negative -{name}={value}"
                )
                return True
            return False
        if value is None and spec.disallow_elision:
            raise ArgsError(
                f"Can not set -{name} with no value. Please specify value with -{name}=value."
            )
        return "" if value is None else value

    def parse_parameters(self, argv: Sequence[str]) -> None:
        """Core ``ParseParameters`` over ``argv`` (without the program name).

        Raises ``ArgsError("Invalid parameter -foo")`` for an unknown option or one with
        a section prefix, and Core's ``-includeconf cannot be used from commandline``
        error. A bare word ends the options, as for bitcoind (which accepts any command):
        it and the words after it are kept in :attr:`commands`; bitcoind then refuses
        them ("Command line contains unexpected token", src/bitcoind.cpp).
        """
        self.command_line = {}
        self.commands = []
        self.warnings = []
        for i, arg in enumerate(argv):
            if arg == "-":
                break
            key, sep, raw = arg.partition("=")
            value = raw if sep else None
            if not key.startswith("-"):
                self.commands = list(argv[i:])
                break
            if len(key) > 1 and key[1] == "-":
                key = key[1:]
            section, name, negated = _split_key(key[1:])
            if name not in self.specs or section:
                raise ArgsError(f"Invalid parameter {arg}")
            self.command_line.setdefault(name, []).append(self._value(name, negated, value))
        self._arg_warnings = list(self.warnings)
        includes = self.command_line.get("includeconf")
        if includes is not None:
            live = _Span(includes).live()
            if live:
                raise ArgsError(
                    "-includeconf cannot be used from commandline; -includeconf="
                    + _json_str(live[0])
                )

    def read_config_text(
        self, text: str, filepath: str = "", *, ignore_invalid_keys: bool = False
    ) -> None:
        """Core ``ReadConfigStream``: add one file's settings (after what was read).

        Raises ``ArgsError`` with Core's parse errors (``parse error on line N: ...``),
        ``Invalid configuration value foo`` for an unknown key (unless
        ``ignore_invalid_keys``), and the ``conf cannot be set`` error.
        """
        options: list[tuple[str, str]] = []
        prefix = ""
        for linenr, line in enumerate(text.split("\n"), 1):
            used_hash = "#" in line
            if used_hash:
                line = line[: line.index("#")]
            line = line.strip(" \t\r\n")
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                self.config_sections.append((section, filepath, linenr))
                prefix = section + "."
            elif line.startswith("-"):
                raise ArgsError(
                    f"parse error on line {linenr}: {line}, options in configuration file "
                    "must be specified without leading -"
                )
            elif "=" in line:
                key, _, value = line.partition("=")
                name = prefix + key.strip(" \t\r\n")
                if used_hash and "rpcpassword" in name:
                    raise ArgsError(
                        f"parse error on line {linenr}, using # in rpcpassword can be "
                        "ambiguous and should be avoided"
                    )
                options.append((name, value.strip(" \t\r\n")))
                dot = name.rfind(".")
                if dot != -1 and len(prefix) <= dot:
                    self.config_sections.append((name[:dot], filepath, linenr))
            else:
                error = f"parse error on line {linenr}: {line}"
                if len(line) >= 2 and line.startswith("no"):
                    error += f", if you intended to specify a negated option, use {line}=1 instead"
                raise ArgsError(error)
        for key, value in options:
            section, name, negated = _split_key(key)
            if name == "conf":
                raise ArgsError(
                    "conf cannot be set in the configuration file; use includeconf= if you "
                    "want to include additional config files"
                )
            if name not in self.specs:
                if ignore_invalid_keys:
                    self.warnings.append(f"Ignoring unknown configuration value {key}")
                    continue
                raise ArgsError(f"Invalid configuration value {key}")
            self.config.setdefault(section, {}).setdefault(name, []).append(
                self._value(name, negated, value)
            )

    def read_config_files(
        self, default_datadir: Path, *, ignore_invalid_keys: bool = False
    ) -> Path | None:
        """Core ``ReadConfigFiles``: ``-conf`` (default ``bitcoin.conf`` in the datadir,
        ``-noconf``: none), then its ``includeconf`` files (for the chain's section and
        the default one; an ``includeconf`` inside an included file is ignored with
        Core's warning, kept in :attr:`warnings`), then the datadir must exist. Returns
        the file read, or None. ``ignore_invalid_keys`` (bitcoind passes true) turns an
        unknown key into a warning (``Ignoring unknown configuration value foo``). Raises
        ``ArgsError`` as Core."""
        self.config = {}
        self.config_sections = []
        self.warnings = list(self._arg_warnings)  # the command line's stay
        self._ignore_invalid = ignore_invalid_keys
        path = self._read_conf(self.datadir(default_datadir))
        if self.datadir_given() and not self.datadir(default_datadir).is_dir():
            raise ArgsError(
                f'specified data directory "{self.get_arg("datadir", "")}" does not exist.'
            )
        return path

    def _read_conf(self, datadir: Path) -> Path | None:
        conf = self.get_arg("conf", "bitcoin.conf")
        if conf is None or self.is_arg_negated("conf") or conf == "":
            return None
        path = Path(conf)
        if not path.is_absolute():
            path = datadir / path
        if path.is_dir():
            raise ArgsError(f'Config file "{path}" is a directory.')
        try:
            text = path.read_bytes().decode("utf-8", errors="surrogateescape")
        except OSError:
            if self.is_arg_set("conf"):
                raise ArgsError(f'specified config file "{path}" could not be opened.') from None
            return None
        self.read_config_text(text, str(path), ignore_invalid_keys=self._ignore_invalid)
        if "includeconf" in self.command_line:  # -noincludeconf turns them off
            return path
        chain = self.chain()
        names, n_chain = self._includes(chain)
        more, n_default = self._includes("")
        for name in names + more:
            inc = Path(name)
            if name and not inc.is_absolute():
                inc = datadir / inc
            if name and inc.is_dir():
                raise ArgsError(f'Included config file "{inc}" is a directory.')
            try:
                inc_text = inc.read_bytes().decode("utf-8", errors="surrogateescape")
            except (OSError, ValueError):
                raise ArgsError(f"Failed to include configuration file {name}") from None
            self.read_config_text(inc_text, name, ignore_invalid_keys=self._ignore_invalid)
        nested = self._includes(chain, n_chain)[0] + self._includes("", n_default)[0]
        self.warnings += [
            "warning: -includeconf cannot be used from included files; "
            f"ignoring -includeconf={name}"
            for name in nested
        ]
        return path

    def _includes(self, section: str, skip: int = 0) -> tuple[list[str], int]:
        values = self.config.get(section, {}).get("includeconf", [])
        start = max(skip, _Span(values).negated())
        return [v for v in values[start:] if isinstance(v, str)], len(values)

    # -- the chain and the data directory ------------------------------------------------------

    def _chain_flag(self, name: str) -> bool:
        value = self._setting("", name, ignore_default=False, chain_type=True)
        if value is None:
            return False
        return value if isinstance(value, bool) else interpret_bool(value)

    def chain(self) -> str:
        """Core ``GetChainTypeString``: ``main``, ``test``, ``testnet4``, ``signet``,
        ``regtest`` (or a custom ``-chain`` name). Raises ``ArgsError`` when more than
        one is chosen."""
        flags = {n: self._chain_flag(n) for n in ("regtest", "signet", "testnet", "testnet4")}
        chain_arg = self.get_arg("chain")
        if (chain_arg is not None) + sum(flags.values()) > 1:
            raise ChainError(
                "Invalid combination of -regtest, -signet, -testnet, -testnet4 and -chain. "
                "Can use at most one."
            )
        if chain_arg is not None:
            return chain_arg
        for flag, chain in (
            ("regtest", "regtest"),
            ("signet", "signet"),
            ("testnet", "test"),
            ("testnet4", "testnet4"),
        ):
            if flags[flag]:
                return chain
        return "main"

    def select_network(self, chain: str) -> None:
        """Core ``SelectConfigNetwork``: from now on, read the ``[chain]`` section."""
        self._network = chain

    def datadir(self, default: Path) -> Path:
        """``-datadir`` as an absolute path (Core ``GetPathArg``: no ``~`` expansion; empty
        means the default), else ``default`` (the network-independent root)."""
        value = self.get_arg("datadir")
        return Path(value).absolute() if value else default

    def datadir_given(self) -> bool:
        """Core ``CheckDataDirOption``'s condition: a non-empty ``-datadir`` was given."""
        return bool(self.get_arg("datadir"))

    # -- output -----------------------------------------------------------------------------

    def log_args(self, sensitive: frozenset[str] = frozenset()) -> list[str]:
        """Core ``ArgsManager::LogArgs`` (src/common/args.cpp): one line per value, the
        config file's by section then name (``Config file arg: [regtest] server="1"``;
        no ``[section]`` for the top one), then the command line's by name
        (``Command-line arg: addnode="some.node"``). Values are written as JSON (a
        negation is ``false``); the options in ``sensitive`` show ``****``."""
        lines: list[str] = []

        def add(prefix: str, section: str, options: dict[str, list[Value]]) -> None:
            where = f"[{section}] " if section else ""
            for name in sorted(options):
                for value in options[name]:
                    text = "****" if name in sensitive else json.dumps(value)
                    lines.append(f"{prefix} {where}{name}={text}")

        for section in sorted(self.config):
            add("Config file arg:", section, self.config[section])
        add("Command-line arg:", "", self.command_line)
        return lines

    def _sources(self, section: str, name: str) -> list[tuple[str, Sequence[Value]]]:
        """Core ``MergeSettings``: the values of ``name`` by source, highest first: the
        command line, the ``section`` of the config file, its default section."""
        sources: list[tuple[str, Sequence[Value]]] = []
        if name in self.command_line:
            sources.append(("cmd", self.command_line[name]))
        if section and name in self.config.get(section, {}):
            sources.append(("net", self.config[section][name]))
        if name in self.config.get("", {}):
            sources.append(("default", self.config[""][name]))
        return sources

    def _setting(
        self, section: str, name: str, *, ignore_default: bool, chain_type: bool = False
    ) -> Value | None:
        """Core ``GetSetting`` (no forced or read-write settings here)."""
        sources = self._sources(section, name)
        for source, values in sources:
            span = _Span(values)
            if source == "default" and ignore_default and not span.last_negated():
                continue
            if chain_type and source == "cmd" and span.last_negated():
                continue
            live = span.live()
            if not span.empty():
                reverse = source in ("net", "default") and not chain_type
                return live[0] if reverse else live[-1]
            if span.last_negated():
                return False
        return None

    def _use_default_section(self, name: str) -> bool:
        spec = self.specs.get(name)
        return self._network == "main" or spec is None or not spec.network_only

    def setting(self, name: str) -> Value | None:
        """The effective value of ``name`` (a string, False if negated, None if unset)."""
        return self._setting(
            self._network or "", name, ignore_default=not self._use_default_section(name)
        )

    def get_arg(self, name: str, default: str | None = None) -> str | None:
        """Core ``GetArg``: the value as text (``"0"``/``"1"`` for negations), or ``default``."""
        value = self.setting(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "1" if value else "0"
        return value

    def get_args(self, name: str) -> list[str]:
        """Core ``GetArgs``: every value of a list option, by Core's merge rules."""
        section = self._network or ""
        ignore_default = not self._use_default_section(name)
        sources = self._sources(section, name)
        result: list[Value] = []
        done = False
        prev_negated_empty = False
        for source, values in sources:
            span = _Span(values)
            zombies = source in ("net", "default") and not prev_negated_empty
            if ignore_default and source == "default":
                continue
            if not done or zombies:
                result.extend(span.live())
            done = done or span.negated() > 0
            prev_negated_empty = prev_negated_empty or (span.last_negated() and not result)
        return ["1" if v is True else "0" if v is False else v for v in result]

    def is_arg_set(self, name: str) -> bool:
        """Core ``IsArgSet``: given anywhere that counts, negations included."""
        return self.setting(name) is not None

    def is_arg_negated(self, name: str) -> bool:
        """Core ``IsArgNegated``: the effective value is a negation."""
        return self.setting(name) is False

    def get_bool_arg(self, name: str, default: bool) -> bool:
        """Core ``GetBoolArg``: ``interpret_bool`` of the value, or ``default``."""
        value = self.setting(name)
        if value is None:
            return default
        return value if isinstance(value, bool) else interpret_bool(value)

    def get_int_arg(self, name: str, default: int) -> int:
        """Core ``GetIntArg``: the leading integer of the value (0 if none), or
        ``default``; a negation is 0."""
        value = self.setting(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return int(value)
        return _atoi(value)


def _atoi(text: str) -> int:
    """Core ``LocaleIndependentAtoi<int64_t>``: optional sign and leading digits, else 0."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    if text[:1] in ("-", "+"):
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def _json_str(value: Value) -> str:
    """How Core prints a settings value in an error (``UniValue::write``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
