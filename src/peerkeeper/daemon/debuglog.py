"""Bitcoin Core's debug.log: the line format, categories and levels (src/logging.cpp,
src/init/common.cpp).

A line is, in Core's order::

    2026-12-06T07:01:10.123456Z (mocktime: 2026-12-06T08:00:00Z) [MainThread] \
[bitcoin/peer.py:824] [_on_getaddr] [net] Ignoring repeated "getaddr". peer=9

* the timestamp (``-logtimestamps``, default on; ``-logtimemicros`` adds microseconds),
  then `` (mocktime: ...)`` while the node's mock time is set (Core ``LogTimestampStr``);
* ``[thread]`` with ``-logthreadnames`` (Python's thread name: peerkeeper runs on one
  event loop thread, where Core has ``net``, ``msghand``, ``opencon``...);
* ``[file:line] [function]`` with ``-logsourcelocations`` (the Python source);
* Core's prefix (``GetLogPrefix``): nothing for info, ``[warning]`` / ``[error]``,
  ``[net]`` for a debug line of category ``net``, ``[net:trace]`` for trace; with
  ``-loglevelalways`` always ``[category:level]`` (``all`` for uncategorized lines);
* the message with control characters escaped as ``\\x1b`` (``LogEscapeMessage``), so a
  peer-chosen string cannot inject terminal codes or fake lines.

A log record's category is its logger's name under ``peerkeeper.`` (``peerkeeper.net``
-> ``net``); as in Core, only debug and trace lines show it. ``-debug=CAT`` enables
the debug level of a category, ``-debugexclude=CAT`` takes it away again, and
``-loglevel=LEVEL`` / ``-loglevel=CAT:LEVEL`` pick ``info``, ``debug`` (the default)
or ``trace`` for the enabled ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

__all__ = [
    "CORE_CATEGORIES",
    "OWN_CATEGORIES",
    "TRACE",
    "CoreLogFormatter",
    "LogOptions",
    "LogSetupError",
    "escape_message",
    "install",
    "logging_rpc",
    "set_mocktime_source",
]

#: Core's logging categories (src/logging.cpp ``LogCategories``): accepted for -debug;
#: peerkeeper's own categories are the ones it logs under.
CORE_CATEGORIES = frozenset(
    [
        "net",
        "tor",
        "i2p",
        "mempool",
        "http",
        "bench",
        "zmq",
        "walletdb",
        "rpc",
        "estimatefee",
        "addrman",
        "selectcoins",
        "reindex",
        "cmpctblock",
        "rand",
        "prune",
        "proxy",
        "mempoolrej",
        "coindb",
        "qt",
        "leveldb",
        "validation",
        "ipc",
        "lock",
        "blockstorage",
        "txreconciliation",
        "scan",
        "txpackages",
        "kernel",
        "privatebroadcast",
        "libevent",
    ]
)

#: peerkeeper's own log categories (``-debug=native`` ...), beside Core's.
OWN_CATEGORIES = frozenset({"node", "native", "pool", "dispatch", "gossip"})

#: Core's ``BCLog::Level::Trace``, below ``logging.DEBUG``.
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: Core's level names (``LogLevelToStr``), highest first: a record gets the first whose
#: floor it reaches, else ``trace``.
_LEVEL_NAMES = (
    (logging.ERROR, "error"),
    (logging.WARNING, "warning"),
    (logging.INFO, "info"),
    (logging.DEBUG, "debug"),
)
#: ``-loglevel`` values a user may choose (Core ``LogLevelsList``).
_USER_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG, "trace": TRACE}


class LogSetupError(ValueError):
    """A ``-debug`` / ``-debugexclude`` / ``-loglevel`` value Core refuses; the message
    is Core's (without the ``Error: `` that the daemon prints before it)."""


def escape_message(text: str) -> str:
    """Core ``LogEscapeMessage``: every control character but ``\\n``, and DEL, becomes
    ``\\xNN``."""
    if text.isprintable():
        return text
    return "".join(
        c if (c >= " " or c == "\n") and c != "\x7f" else f"\\x{ord(c):02x}" for c in text
    )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class LogOptions:
    """The logging options of Core's ``InitLogging`` / ``SetLoggingLevel`` /
    ``SetLoggingCategories`` (src/init/common.cpp), with Core's defaults.

    ``categories``: the enabled debug categories (``"all"`` for every one);
    ``exclude``: ``-debugexclude``; ``level``: the level of enabled categories
    (``logging.DEBUG`` by default, ``TRACE`` or ``INFO``); ``category_levels``: per
    category overrides.
    """

    timestamps: bool = True
    time_micros: bool = False
    thread_names: bool = False
    source_locations: bool = False
    always_print_category_level: bool = False
    categories: set[str] = field(default_factory=set)
    exclude: set[str] = field(default_factory=set)
    level: int = logging.DEBUG
    category_levels: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse_levels(
        cls, values: Iterable[str], known_categories: Iterable[str]
    ) -> tuple[int, dict[str, int]]:
        """``-loglevel`` values -> (global level, per-category levels) (Core
        ``SetLoggingLevel``). Raises :class:`LogSetupError` with Core's texts."""
        known = sorted(set(known_categories))
        level = logging.DEBUG
        per: dict[str, int] = {}
        for value in values:
            if ":" not in value:
                if value not in _USER_LEVELS:
                    raise LogSetupError(
                        f"Unsupported global logging level -loglevel={value}. "
                        "Valid values: info, debug, trace."
                    )
                level = _USER_LEVELS[value]
                continue
            cat, _, lvl = value.partition(":")
            if cat not in known or lvl not in _USER_LEVELS:
                raise LogSetupError(
                    f"Unsupported category-specific logging level -loglevel={value}. "
                    "Expected -loglevel=<category>:<loglevel>. "
                    f"Valid categories: {', '.join(known)}. Valid loglevels: info, debug, trace."
                )
            per[cat] = _USER_LEVELS[lvl]
        return level, per

    def level_for(self, category: str) -> int:
        """The lowest level logged for ``category``: info unless the category is enabled
        and not excluded (Core ``WillLogCategoryLevel``)."""
        enabled = bool({category, "all"} & self.categories) and category not in self.exclude
        if not enabled:
            return logging.INFO
        return self.category_levels.get(category, self.level)


_MOCKTIME: list[Callable[[], float]] = []


def set_mocktime_source(source: Callable[[], float] | None) -> None:
    """Where lines read the node's mock time (unix seconds, 0 = none) for Core's
    `` (mocktime: ...)`` stamp; None stops it. One node per process (peerkeeperd)."""
    _MOCKTIME.clear()
    if source is not None:
        _MOCKTIME.append(source)


class CoreLogFormatter(logging.Formatter):
    """Formats records as Core's ``BCLog::Logger::Format`` does (see the module)."""

    def __init__(self, options: LogOptions | None = None) -> None:
        super().__init__()
        self.options = options or LogOptions()

    def format(self, record: logging.LogRecord) -> str:
        opts = self.options
        parts: list[str] = []
        if opts.timestamps:
            stamp = _iso(record.created)
            if opts.time_micros:
                micros = int((record.created % 1) * 1_000_000)
                stamp = f"{stamp[:-1]}.{micros:06d}Z"
            mocktime = _MOCKTIME[0]() if _MOCKTIME else 0.0
            if mocktime > 0:
                stamp += f" (mocktime: {_iso(mocktime)})"
            parts.append(stamp + " ")
        if opts.thread_names:
            parts.append(f"[{record.threadName or 'unknown'}] ")
        if opts.source_locations:
            where = record.pathname.replace("\\", "/").rsplit("/peerkeeper/", 1)[-1]
            parts.append(f"[{where}:{record.lineno}] [{record.funcName}] ")
        parts.append(self._prefix(record))
        text = escape_message(record.getMessage())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        parts.append(text)
        return "".join(parts)

    def _prefix(self, record: logging.LogRecord) -> str:
        """Core ``GetLogPrefix``: a category shows on debug and trace lines only."""
        level = record.levelno
        name = next((n for floor, n in _LEVEL_NAMES if level >= floor), "trace")
        always = self.options.always_print_category_level
        category = ""
        if level < logging.INFO:
            category = record.name.removeprefix("peerkeeper.").split(".", 1)[0] or "all"
        elif always:
            category = "all"
        if not category:
            return "" if name == "info" else f"[{name}] "
        if always or name != "debug":
            return f"[{category}:{name}] "
        return f"[{category}] "


_INSTALLED: list[tuple[LogOptions, tuple[str, ...]]] = []


def logging_rpc(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> dict[str, bool]:
    """Core's ``logging`` RPC (src/rpc/node.cpp): turn debug categories on (``include``)
    and off (``exclude``, which wins) at run time; ``all`` / ``1`` is every category.
    Returns every category (Core's and peerkeeper's) and whether it logs debug lines.

    Raises :class:`LogSetupError` ("unknown logging category X") for an unknown name.
    """
    known = CORE_CATEGORIES | OWN_CATEGORIES
    if not _INSTALLED:
        _INSTALLED.append((LogOptions(), ()))
    options, loggers = _INSTALLED[0]
    for names, on in ((include, True), (exclude, False)):
        for name in names:
            if name in ("all", "1"):
                chosen = set(known)
            elif name in known:
                chosen = {name}
            else:
                raise LogSetupError(f"unknown logging category {name}")
            if on:
                options.categories |= chosen
                options.exclude -= chosen
            else:
                options.categories -= chosen | ({"all"} if name in ("all", "1") else set())
                options.exclude |= chosen
    for category in loggers:
        logging.getLogger(f"peerkeeper.{category}").setLevel(options.level_for(category))
    return {c: options.level_for(c) < logging.INFO for c in sorted(known)}


def install(
    options: LogOptions,
    categories: Iterable[str],
    *,
    path: str | None = None,
    console: TextIO | None = None,
) -> None:
    """Send peerkeeper's logs to ``path`` (appended, flushed per line; None = no file)
    and/or ``console``, in Core's format, with each of ``categories`` (the logger names
    under ``peerkeeper.``) at its level from ``options``."""
    formatter = CoreLogFormatter(options)
    handlers: list[logging.Handler] = []
    if path is not None:
        handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    if console is not None:
        handlers.append(logging.StreamHandler(console))
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger("peerkeeper")
    # No handler at all would let Python's last-resort handler print warnings to stderr.
    root.handlers[:] = handlers or [logging.NullHandler()]
    root.setLevel(logging.INFO)
    root.propagate = False
    _INSTALLED[:] = [(options, tuple(categories))]
    for category in categories:
        logging.getLogger(f"peerkeeper.{category}").setLevel(options.level_for(category))
