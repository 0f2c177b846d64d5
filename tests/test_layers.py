"""The layers hold: the facade, the pure folders' purity, the arrows between folders, and
no import circles (ARCHITECTURE.md). ruff's banned-api checks the same purity on every
CI run; these tests make ``pytest`` alone enough."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

import peerkeeper

SRC = Path(peerkeeper.__file__).resolve().parent
PURE = ("net", "wire", "native", "dispatch", "bitcoin", "sim")
#: The folders each folder may import from (besides itself): a DAG, bottom-up.
ALLOWED: dict[str, set[str]] = {
    "net": set(),
    "wire": {"net"},
    "native": {"net", "wire"},
    "dispatch": {"net", "wire", "native"},
    "bitcoin": {"net", "wire", "dispatch"},
    "sim": {"net", "wire", "native", "dispatch", "bitcoin"},
    "io": {"net", "wire", "native", "dispatch", "bitcoin"},
    "shell": {"net", "wire", "native", "dispatch", "bitcoin", "io"},
    "daemon": {"net", "wire", "native", "dispatch", "bitcoin", "io", "shell", "sim"},
}
BANNED_MODULES = {"asyncio", "socket", "selectors", "sqlite3", "threading", "subprocess"}
BANNED_MODULES |= {"secrets", "pathlib"}
BANNED_CALLS = {("time", "time"), ("time", "monotonic"), ("time", "sleep"), ("os", "urandom")}
BANNED_CALLS |= {("random", "SystemRandom")}


def modules() -> dict[str, Path]:
    out = {}
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(["peerkeeper", *parts])] = f
    return out


@functools.cache
def parsed(path: Path) -> ast.Module:
    """The syntax tree of one source file, parsed once for all the tests (never mutated)."""
    return ast.parse(path.read_text())


@functools.cache
def runtime_imports(path: Path) -> tuple[tuple[int, str], ...]:
    """(line, module) of every import that runs (``if TYPE_CHECKING:`` blocks skipped)."""
    tree = parsed(path)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return tuple(found)


def test_facade_exposes_the_public_names_lazily() -> None:
    expected = {
        "Node", "Config", "NativeNode", "NativeConfig", "Service", "NetAddr", "SubNet",
        "Network", "ConnectionType", "ServiceFlags", "AddrEntry", "Dispatcher", "PeerId",
        "Identity", "AddrError", "DecodeError", "ConfigError", "RpcError", "RequestFailed",
    }  # fmt: skip
    assert expected <= set(peerkeeper.__all__)
    for name in peerkeeper.__all__:
        assert getattr(peerkeeper, name) is not None
    assert peerkeeper.Service.parse("1.2.3.4:8333", 0).port == 8333
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = peerkeeper.Nope  # type: ignore[attr-defined]


def test_importing_the_facade_or_a_pure_layer_stays_cheap() -> None:
    # (threading is not listed: the standard library's logging imports it.)
    code = (
        "import sys; before = set(sys.modules);"
        "import peerkeeper, peerkeeper.wire.messages, peerkeeper.bitcoin.connman, "
        "peerkeeper.native.pool, peerkeeper.dispatch.dispatcher;"
        "print(sorted(m for m in ('asyncio', 'sqlite3', 'socket', 'selectors', "
        "'peerkeeper.daemon.node') if m in set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_pure_folders_touch_no_io_clock_or_os_rng() -> None:
    bad = []
    for name, path in modules().items():
        layer = name.split(".")[1] if name.count(".") >= 2 else ""
        if layer not in PURE:
            continue
        for line, mod in runtime_imports(path):
            if mod.split(".")[0] in BANNED_MODULES or tuple(mod.split(".")) in BANNED_CALLS:
                bad.append(f"{name}:{line} imports {mod}")
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "open":
                    bad.append(f"{name}:{node.lineno} calls open()")
                if (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and (f.value.id, f.attr) in BANNED_CALLS
                ):
                    bad.append(f"{name}:{node.lineno} calls {f.value.id}.{f.attr}")
    assert not bad, bad


def test_folders_import_only_downwards() -> None:
    bad = []
    for name, path in modules().items():
        parts = name.split(".")
        if len(parts) < 3:
            continue  # the facade
        layer = parts[1]
        for line, mod in runtime_imports(path):
            target = mod.split(".")
            if target[0] != "peerkeeper" or len(target) < 2 or target[1] == layer:
                continue
            if target[1] in ALLOWED and target[1] not in ALLOWED[layer]:
                bad.append(f"{name}:{line} imports {mod}")
    assert not bad, bad


def test_no_import_circles() -> None:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for _, mod in runtime_imports(path):
            if mod in mods and mod != name and mod != "peerkeeper":
                graph[name].add(mod)
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles
