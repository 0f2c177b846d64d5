"""``peerkeeper sim SCENARIO``: run a simulation scenario and write what it found.

Scenarios (:mod:`peerkeeper.sim`): ``converge``, ``eclipse``, ``inbound-flood`` (Bitcoin
nodes) and ``native`` (native-protocol nodes: Octez's min/expected/max, swaps).
Writes into ``--out``:

* ``report.json``: the scenario's report (plus the wall time and the command);
* ``timeseries.csv``: one row per sample;
* ``*.png``: plots (matplotlib, when installed: ``pip install 'peerkeeper[sim]'``).

A progress bar (rich, when installed) shows simulated time and events/s.

``--sweep NAME=V1,V2,... --seeds N`` runs the grid (every value x ``N`` seeds, and with
``--ablation`` every countermeasure setting) in a process pool (``--workers``), or on a
Dask cluster with ``--dask-scheduler tcp://HOST:PORT``; it writes ``sweep.json``,
``sweep.csv`` and ``sweep.png`` (P(eclipse) against the swept value, per setting). A run
that raises is reported with its parameters and seed and the sweep goes on.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.sim.converge import CONVERGE_ROW_FIELDS, ConvergeConfig, run_converge
from peerkeeper.sim.eclipse import (
    ROW_FIELDS,
    Countermeasures,
    EclipseConfig,
    run_eclipse,
    wilson_interval,
)
from peerkeeper.sim.flood import FLOOD_ROW_FIELDS, FloodConfig, run_inbound_flood
from peerkeeper.sim.native import NATIVE_ROW_FIELDS, NativeSimConfig, run_native
from peerkeeper.sim.network import Churn, SimError

__all__ = ["add_sim_parser", "run_sim", "sweep_task"]

SCENARIOS = ("converge", "eclipse", "inbound-flood", "native")
#: EclipseConfig fields a sweep may vary (integers or seconds).
_SWEEPABLE = {
    f.name for f in fields(EclipseConfig) if f.name not in ("seed", "countermeasures", "erebus")
}


def add_sim_parser(sub: Any) -> None:
    """Add the ``sim`` command to the ``peerkeeper`` sub-parsers ``sub``."""
    p = sub.add_parser(
        "sim",
        help="simulate a network of peerkeeper cores (converge, eclipse, inbound-flood, native)",
    )
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--out", type=Path, required=True, help="directory for the results")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="a small run that takes seconds")
    p.add_argument("--nodes", type=int, help="honest nodes (default 100; inbound-flood 80)")
    p.add_argument("--hours", type=float, help="converge, native: simulated hours (default 1)")
    p.add_argument("--netgroups", type=int, help="converge, native: /16 groups of the honest nodes")
    p.add_argument(
        "--churn",
        type=float,
        metavar="P",
        help="converge, native: nodes leave and return; P = share staying >= 1 h (KIT: 0.9)",
    )
    p.add_argument(
        "--connections",
        metavar="MIN,EXPECTED,MAX",
        help="native: Octez's connection counts (default 4,8,12)",
    )
    p.add_argument(
        "--bootstrap", type=int, help="native: bootstrap nodes every node knows (default 3)"
    )
    p.add_argument(
        "--liars", type=int, help="native: nodes whose bytes stop decoding once connected"
    )
    p.add_argument("--downtime", type=float, default=1800.0, help="churn: mean seconds away")
    p.add_argument("--attacker-addresses", type=int, help="eclipse: default 16384")
    p.add_argument("--attacker-groups", type=int, help="eclipse: default 64")
    p.add_argument("--attacker-nodes", type=int, help="eclipse: default 32")
    p.add_argument("--attack-hours", type=float, help="eclipse: flooding before restarts (4)")
    p.add_argument("--restarts", type=int, help="eclipse: victim restarts (default 20)")
    p.add_argument("--settle", type=float, help="eclipse: seconds after each restart")
    p.add_argument(
        "--erebus",
        action="store_true",
        help="eclipse: the attacker's /16s are all inside one AS (Erebus-like)",
    )
    p.add_argument(
        "--honest-ases", type=int, help="eclipse: ASes the honest /16s share (default one each)"
    )
    p.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="NAME",
        help=f"eclipse: switch a countermeasure off ({', '.join(Countermeasures.names())})",
    )
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="eclipse: run every value (e.g. attacker_addresses=1000,4600)",
    )
    p.add_argument("--seeds", type=int, default=1, help="sweep: seeds per point (default 1)")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="sweep: also every countermeasure off in turn",
    )
    p.add_argument("--workers", type=int, default=None, help="sweep: processes (default: cores)")
    p.add_argument("--dask-scheduler", help="sweep: run on this Dask scheduler instead")
    p.add_argument("--flood-per-minute", type=float, help="inbound-flood: default 40")
    p.add_argument("--honest-per-minute", type=float, help="inbound-flood: default 3")
    p.add_argument("--flood-minutes", type=float, help="inbound-flood: default 30")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")


# -- building configs --------------------------------------------------------------------


def _eclipse_config(args: argparse.Namespace) -> EclipseConfig:
    cm = Countermeasures()
    for name in args.without:
        cm = cm.without(name)
    changes: dict[str, Any] = {"seed": args.seed, "countermeasures": cm}
    for opt, key in (
        ("nodes", "honest"),
        ("attacker_addresses", "attacker_addresses"),
        ("attacker_groups", "attacker_groups"),
        ("attacker_nodes", "attacker_nodes"),
        ("restarts", "restarts"),
        ("settle", "settle"),
        ("honest_ases", "honest_ases"),
    ):
        if getattr(args, opt) is not None:
            changes[key] = getattr(args, opt)
    if args.attack_hours is not None:
        changes["attack"] = args.attack_hours * 3600
    if args.erebus:
        changes["erebus"] = True
    return EclipseConfig.quick(**changes) if args.quick else EclipseConfig(**changes)


def _converge_config(args: argparse.Namespace) -> ConvergeConfig:
    nodes = args.nodes if args.nodes is not None else (30 if args.quick else 100)
    hours = args.hours if args.hours is not None else (0.25 if args.quick else 1.0)
    churn = None if args.churn is None else Churn(args.churn, args.downtime)
    return ConvergeConfig(
        nodes=nodes, hours=hours, seed=args.seed, netgroups=args.netgroups, churn=churn
    )


def _native_config(args: argparse.Namespace) -> NativeSimConfig:
    changes: dict[str, Any] = {"seed": args.seed}
    changes["nodes"] = args.nodes if args.nodes is not None else (20 if args.quick else 50)
    changes["hours"] = args.hours if args.hours is not None else (0.25 if args.quick else 1.0)
    if args.netgroups is not None:
        changes["netgroups"] = args.netgroups
    if args.churn is not None:
        changes["churn"] = Churn(args.churn, args.downtime)
    if args.bootstrap is not None:
        changes["bootstrap"] = args.bootstrap
    if args.liars is not None:
        changes["liars"] = args.liars
    if args.connections is not None:
        try:
            low, expected, high = (int(v) for v in args.connections.split(","))
            changes["limits"] = MaintenanceConfig(
                min_connections=low, expected_connections=expected, max_connections=high
            )
        except ValueError as e:
            raise SimError(f"--connections {args.connections!r}: {e}") from None
    return NativeSimConfig(**changes)


def _flood_config(args: argparse.Namespace) -> FloodConfig:
    changes: dict[str, Any] = {"seed": args.seed}
    if args.nodes is not None:
        changes["honest"] = args.nodes
    if args.flood_per_minute is not None:
        changes["flood_per_minute"] = args.flood_per_minute
    if args.honest_per_minute is not None:
        changes["honest_per_minute"] = args.honest_per_minute
    if args.flood_minutes is not None:
        changes["duration"] = args.flood_minutes * 60
    return FloodConfig.quick(**changes) if args.quick else FloodConfig(**changes)


def parse_sweep(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["attacker_addresses=1000,4600"]`` -> ``{"attacker_addresses": [1000, 4600]}``;
    raises :class:`SimError` for an unknown name or a value that is not a number."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in _SWEEPABLE:
            raise SimError(
                f"--sweep {spec!r}: expected NAME=V1,V2 with NAME one of {sorted(_SWEEPABLE)}"
            )
        try:
            grid[name] = [float(v) if "." in v else int(v) for v in values.split(",") if v]
        except ValueError as e:
            raise SimError(f"--sweep {spec!r}: {e}") from None
        if not grid[name]:
            raise SimError(f"--sweep {spec!r}: no values")
    return grid


# -- progress ----------------------------------------------------------------------------


class _Progress:
    """A rich progress bar of simulated time and events/s, or nothing."""

    def __init__(self, total: float, enabled: bool) -> None:
        self.total = total
        self.started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        try:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:  # pragma: no cover - rich is in the sim extra
            return
        self._bar = Progress(
            TextColumn("simulated {task.fields[sim]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%  {task.fields[rate]} events/s"),
            TimeElapsedColumn(),
            transient=True,
        )
        self._task = self._bar.add_task("sim", total=total, sim="0:00:00", rate="0")

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, simulated: float, events: int) -> None:
        if self._bar is None:
            return
        wall = max(time.perf_counter() - self.started, 1e-9)
        s = int(simulated)
        self._bar.update(
            self._task,
            completed=simulated,
            sim=f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}",
            rate=f"{events / wall:,.0f}",
        )


# -- writing -----------------------------------------------------------------------------


def _write_csv(path: Path, names: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(names), extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(plt: Any, fig: Any, out: Path, name: str) -> list[str]:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return [name]


def _plot_eclipse(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    plt = _pyplot()
    if plt is None:
        return []
    t = [r["t"] / 3600 for r in rows]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    a.plot(t, [r["attacker_share"] for r in rows], label="attacker's share of outbound slots")
    a.axhline(report["share_bound"], ls="--", c="grey", label="attacker netgroups / 10")
    a.set_ylim(0, 1.05)
    a.set_ylabel("share of 10 slots")
    a.legend(loc="upper left")
    a.set_title(
        f"eclipse: {report['attacker_addresses']} addresses in "
        f"{report['attacker_groups']} /16s{' of one AS' if report['erebus'] else ''} "
        f"({report['countermeasures_label']})"
    )
    b.plot(t, [r["new_attacker"] for r in rows], label="new table: attacker")
    b.plot(t, [r["new_total"] - r["new_attacker"] for r in rows], label="new table: honest")
    b.plot(t, [r["tried_attacker"] for r in rows], label="tried table: attacker")
    b.plot(t, [r["tried_total"] - r["tried_attacker"] for r in rows], label="tried table: honest")
    b.set_xlabel("simulated hours")
    b.set_ylabel("victim's address book")
    b.legend(loc="upper left")
    return _save(plt, fig, out, "eclipse.png")


def _plot_converge(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    plt = _pyplot()
    if plt is None:
        return []
    t = [r["t"] / 3600 for r in rows]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    a.plot(t, [r["full_relay_mean"] for r in rows], label="full-relay outbound (mean)")
    a.plot(t, [r["block_relay_mean"] for r in rows], label="block-relay-only outbound (mean)")
    a.plot(t, [r["inbound_mean"] for r in rows], label="inbound (mean)")
    a.set_ylabel("peers")
    a.legend(loc="lower right")
    a.set_title(f"converge: {report['nodes']} nodes")
    b.plot(t, [r["addrman_mean"] for r in rows], label="addrman entries (mean)")
    b.plot(t, [r["tried_mean"] for r in rows], label="tried entries (mean)")
    b.set_xlabel("simulated hours")
    b.legend(loc="lower right")
    return _save(plt, fig, out, "converge.png")


def _plot_native(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    plt = _pyplot()
    if plt is None:
        return []
    t = [r["t"] / 3600 for r in rows]
    limits = report["params"]["limits"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    a.plot(t, [r["connections_mean"] for r in rows], label="connections (mean)")
    a.fill_between(
        t,
        [r["connections_min"] for r in rows],
        [r["connections_max"] for r in rows],
        alpha=0.25,
        label="connections (min..max)",
    )
    for name in ("min_connections", "expected_connections", "max_connections"):
        a.axhline(limits[name], ls="--", c="grey", lw=0.8)
    a.set_ylabel("running connections per node")
    a.legend(loc="lower right")
    a.set_title(
        f"native: {report['nodes']} nodes, bounds "
        f"{limits['min_connections']}/{limits['expected_connections']}/{limits['max_connections']}"
    )
    b.plot(t, [r["swaps"] for r in rows], label="swaps (total)")
    b.plot(t, [r["known_points_mean"] for r in rows], label="known points (mean)")
    b.set_xlabel("simulated hours")
    b.legend(loc="upper left")
    return _save(plt, fig, out, "native.png")


def _plot_flood(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    plt = _pyplot()
    if plt is None:
        return []
    t = [r["t"] / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.plot(t, [r["flood_inbound"] for r in rows], label="flood netgroup's inbound peers")
    ax.plot(t, [r["honest_inbound"] for r in rows], label="honest inbound peers")
    ax.axhline(report["victim_inbound_slots"], ls="--", c="grey", label="inbound slots")
    ax.set_xlabel("simulated minutes")
    ax.set_ylabel("peers")
    ax.set_title(
        f"inbound flood: honest kept {report['honest_kept']}/{report['honest_arrived']}, "
        f"long-lived kept {report['long_lived_kept']}/{report['long_lived']}"
    )
    ax.legend(loc="upper left")
    return _save(plt, fig, out, "inbound-flood.png")


def _plot_sweep(out: Path, name: str, points: list[dict[str, Any]]) -> list[str]:
    plt = _pyplot()
    if plt is None:
        return []
    fig, ax = plt.subplots(figsize=(9, 5))
    for label in sorted({p["countermeasures"] for p in points}):
        mine = sorted((p for p in points if p["countermeasures"] == label), key=lambda p: p[name])
        xs = [p[name] for p in mine]
        ys = [p["p_eclipse"] for p in mine]
        lo = [p["p_eclipse"] - p["p_eclipse_ci95"][0] for p in mine]
        hi = [p["p_eclipse_ci95"][1] - p["p_eclipse"] for p in mine]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel("P(eclipse) per restart (95 % CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize="small")
    return _save(plt, fig, out, "sweep.png")


# -- one run -----------------------------------------------------------------------------


def _single(args: argparse.Namespace, argv: Sequence[str]) -> int:
    out: Path = args.out
    if args.scenario == "eclipse":
        ecfg = _eclipse_config(args)
        total = ecfg.duration
    elif args.scenario == "inbound-flood":
        fcfg = _flood_config(args)
        total = fcfg.warmup + fcfg.duration
    elif args.scenario == "native":
        ncfg = _native_config(args)
        total = ncfg.hours * 3600
    else:
        ccfg = _converge_config(args)
        total = ccfg.hours * 3600
    started = time.perf_counter()
    with _Progress(total, not args.no_progress and sys.stderr.isatty()) as progress:
        if args.scenario == "eclipse":
            eres = run_eclipse(ecfg, progress=progress)
            report, rows, names = eres.report, eres.rows, ROW_FIELDS
        elif args.scenario == "inbound-flood":
            fres = run_inbound_flood(fcfg, progress=progress)
            report, rows, names = fres.report, fres.rows, FLOOD_ROW_FIELDS
        elif args.scenario == "native":
            nres = run_native(ncfg, progress=progress)
            report, rows, names = nres.report, nres.rows, NATIVE_ROW_FIELDS
        else:
            cres = run_converge(ccfg, progress=progress)
            report, rows, names = cres.report, cres.rows, CONVERGE_ROW_FIELDS
    wall = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    report = {**report, "wall_seconds": round(wall, 3), "command": ["peerkeeper", *argv]}
    report["events_per_second"] = round(int(report["events"]) / max(wall, 1e-9))  # type: ignore[call-overload]
    _write_csv(out / "timeseries.csv", names, rows)
    plots: list[str] = []
    if not args.no_plots:
        plot = {
            "eclipse": _plot_eclipse,
            "converge": _plot_converge,
            "inbound-flood": _plot_flood,
            "native": _plot_native,
        }[args.scenario]
        plots = plot(out, rows, report)
    report["plots"] = plots
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _summary(args.scenario, report)
    return 0


def _summary(scenario: str, report: dict[str, Any]) -> None:
    if scenario == "eclipse":
        lo, hi = report["p_eclipse_ci95"]
        print(
            f"eclipse ({report['countermeasures_label']}): {report['restarts']} restarts, "
            f"P(eclipse) {report['p_eclipse']:.3f} [{lo:.3f}, {hi:.3f}], "
            f"attacker share max {report['attacker_outbound_share']:.1f} "
            f"(bound {report['share_bound']:.1f}), no attacker peer in "
            f"{report['attacker_free_restarts']}/{report['restarts']} restarts"
        )
    elif scenario == "inbound-flood":
        print(
            f"inbound-flood: {report['flood_opened']} flood connections opened; honest peers "
            f"kept {report['honest_kept']}/{report['honest_arrived']}, long-lived kept "
            f"{report['long_lived_kept']}/{report['long_lived']}; at the end "
            f"{report['flood_inbound_at_end']} flood and {report['honest_inbound_at_end']} "
            f"honest inbound peers"
        )
    elif scenario == "native":
        print(
            f"native: {report['nodes']} nodes, within bounds after "
            f"{report['within_bounds_after']} s, degree {report['degree']}, "
            f"{report['swaps']} swaps, {report['liars']} liars with "
            f"{report['liar_connections_at_end']} connections at the end"
        )
    else:
        print(
            f"converge: {report['nodes']} nodes, converged after {report['converged_after']} s, "
            f"netgroup diversity {report['outbound_netgroup_diversity']:.3f}"
        )
    print(
        f"{report['events']:,} events in {report['wall_seconds']:.1f} s "
        f"({report['events_per_second']:,}/s), trace {report['trace_sha256']}"
    )


# -- sweeps ------------------------------------------------------------------------------


def sweep_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep point (``task``: EclipseConfig fields, ``countermeasures`` as a dict);
    never raises: a failure comes back as ``{"error": ..., **task}``. Module-level, so a
    process pool or a Dask worker can import it."""
    try:
        cm = Countermeasures(**task["countermeasures"])
        params = {k: v for k, v in task.items() if k != "countermeasures"}
        rep = run_eclipse(EclipseConfig(**params, countermeasures=cm)).report
        keep = (
            "restarts",
            "eclipsed_restarts",
            "attacker_free_restarts",
            "attacker_outbound_share",
            "trace_sha256",
            "events",
        )
        return {**task, **{k: rep[k] for k in keep}}
    except Exception as e:  # reported, and the sweep goes on
        return {**task, "error": f"{type(e).__name__}: {e}"}


def _tasks(
    base: EclipseConfig, grid: dict[str, list[float]], seeds: int, ablation: bool
) -> list[dict[str, Any]]:
    settings = [base.countermeasures]
    if ablation:
        settings += [
            base.countermeasures.without(n)
            for n in Countermeasures.names()
            if getattr(base.countermeasures, n)
        ]
    points: list[dict[str, Any]] = [{}]
    for name, values in grid.items():
        points = [{**p, name: v} for p in points for v in values]
    tasks = []
    base_params = {f.name: getattr(base, f.name) for f in fields(EclipseConfig)}
    for cm in settings:
        for point in points:
            for k in range(seeds):
                params = {**base_params, **point, "seed": base.seed + k}
                params["countermeasures"] = {n: getattr(cm, n) for n in Countermeasures.names()}
                tasks.append(params)
    return tasks


def _run_tasks(
    tasks: list[dict[str, Any]],
    workers: int | None,
    scheduler: str | None,
    done: Callable[[int], None],
) -> list[dict[str, Any]]:
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise SimError(
                "--dask-scheduler needs dask.distributed: pip install 'peerkeeper[sim]'"
            ) from None
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            futures = client.map(sweep_task, tasks, pure=False)
            results = []
            for k, fut in enumerate(futures):
                results.append(fut.result())
                done(k + 1)
            return results
    if workers == 1:
        results = []
        for k, task in enumerate(tasks):
            results.append(sweep_task(task))
            done(k + 1)
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = []
        for k, res in enumerate(pool.map(sweep_task, tasks)):
            results.append(res)
            done(k + 1)
        return results


def aggregate(results: list[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Per (swept values, countermeasure setting): restarts and eclipses summed over the
    seeds, P(eclipse) with its Wilson 95 % interval, and the failed runs."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in results:
        label = Countermeasures(**r["countermeasures"]).label()
        key = (*(r[n] for n in names), label)
        g = groups.setdefault(
            key,
            {
                **{n: r[n] for n in names},
                "countermeasures": label,
                "runs": 0,
                "failed": [],
                "restarts": 0,
                "eclipsed_restarts": 0,
                "attacker_free_restarts": 0,
                "attacker_outbound_share": 0.0,
            },
        )
        if "error" in r:
            g["failed"].append({"seed": r["seed"], "error": r["error"]})
            continue
        g["runs"] += 1
        g["restarts"] += r["restarts"]
        g["eclipsed_restarts"] += r["eclipsed_restarts"]
        g["attacker_free_restarts"] += r["attacker_free_restarts"]
        g["attacker_outbound_share"] = max(
            g["attacker_outbound_share"], r["attacker_outbound_share"]
        )
    points = []
    for g in groups.values():
        n, k = g["restarts"], g["eclipsed_restarts"]
        g["p_eclipse"] = k / n if n else 0.0
        g["p_eclipse_ci95"] = list(wilson_interval(k, n))
        points.append(g)
    return points


def _sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.scenario != "eclipse":
        raise SimError("--sweep is for the eclipse scenario")
    grid = parse_sweep(args.sweep)
    if args.seeds < 1:
        raise SimError(f"--seeds must be at least 1, not {args.seeds}")
    base = _eclipse_config(args)
    tasks = _tasks(base, grid, args.seeds, args.ablation)
    for t in tasks:  # every point's parameters are checked before anything runs
        EclipseConfig(**{**t, "countermeasures": Countermeasures(**t["countermeasures"])})
    started = time.perf_counter()
    print(f"sweep: {len(tasks)} runs", file=sys.stderr)
    results = _run_tasks(
        tasks,
        args.workers,
        args.dask_scheduler,
        lambda k: (
            print(f"  {k}/{len(tasks)} done", file=sys.stderr) if not args.no_progress else None
        ),
    )
    names = list(grid)
    points = aggregate(results, names)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    failed = [r for r in results if "error" in r]
    report = {
        "scenario": "eclipse-sweep",
        "grid": grid,
        "seeds": args.seeds,
        "runs": len(results),
        "failed_runs": failed,
        "points": points,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "command": ["peerkeeper", *argv],
    }
    cols = [
        *names,
        "countermeasures",
        "runs",
        "restarts",
        "eclipsed_restarts",
        "p_eclipse",
        "ci95_low",
        "ci95_high",
        "attacker_free_restarts",
        "attacker_outbound_share",
    ]
    rows = [
        {**p, "ci95_low": p["p_eclipse_ci95"][0], "ci95_high": p["p_eclipse_ci95"][1]}
        for p in points
    ]
    _write_csv(out / "sweep.csv", cols, rows)
    report["plots"] = [] if args.no_plots or not names else _plot_sweep(out, names[0], points)
    (out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    _print_table(cols, rows)
    for r in failed:
        print(
            f"failed: seed {r['seed']} { ({n: r[n] for n in names}) }: {r['error']}",
            file=sys.stderr,
        )
    return 0 if not failed else 3


def _print_table(cols: list[str], rows: list[dict[str, Any]]) -> None:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is in the sim extra
        print("\t".join(cols))
        for r in rows:
            print("\t".join(fmt(r[c]) for c in cols))
        return
    table = Table(*cols)
    for r in rows:
        table.add_row(*(fmt(r[c]) for c in cols))
    Console().print(table)


def run_sim(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run ``peerkeeper sim`` as parsed in ``args``; returns the exit status (1 for a
    parameter out of range, reported before anything runs; 3 when a sweep run failed)."""
    try:
        if args.sweep:
            return _sweep(args, argv)
        return _single(args, argv)
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
