"""peerkeeper.sim's scenarios (converge, eclipse) and the ``peerkeeper sim`` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from peerkeeper.daemon import simcli
from peerkeeper.daemon.cli import main
from peerkeeper.sim.converge import ConvergeConfig, run_converge
from peerkeeper.sim.eclipse import (
    Countermeasures,
    EclipseConfig,
    run_eclipse,
    wilson_interval,
)
from peerkeeper.sim.network import SimError

TINY = {
    "honest": 8,
    "attacker_addresses": 24,
    "attacker_groups": 3,
    "attacker_nodes": 3,
    "warmup": 120.0,
    "attack": 300.0,
    "restarts": 2,
    "settle": 60.0,
}


def tiny(**changes: Any) -> EclipseConfig:
    return EclipseConfig(**{**TINY, **changes})


def test_eclipse_is_deterministic_and_netgroup_diversity_bounds_the_attacker() -> None:
    a, b = run_eclipse(tiny(seed=3)), run_eclipse(tiny(seed=3))
    assert a.report["trace_sha256"] == b.report["trace_sha256"]
    assert a.rows == b.rows
    rep = a.report
    assert rep["restarts"] == 2 and len(rep["restart_outcomes"]) == 2  # type: ignore[arg-type]
    # One outbound peer per netgroup: 3 attacker groups hold at most 3 of 10 slots.
    assert 0 < rep["attacker_outbound_share"] <= 3 / 10  # type: ignore[operator]
    assert rep["share_bound"] == 0.3
    # The attack really reached the victim's address book and inbound slots.
    assert max(r["new_attacker"] for r in a.rows) > 0  # type: ignore[type-var]
    assert max(r["attacker_inbound"] for r in a.rows) == 3  # type: ignore[type-var]
    assert {r["phase"] for r in a.rows} == {"warmup", "attack", "restarts"}
    assert run_eclipse(tiny(seed=4)).report["trace_sha256"] != rep["trace_sha256"]


def test_without_netgroup_diversity_the_attacker_takes_more_slots() -> None:
    on = run_eclipse(EclipseConfig.quick(seed=7)).report
    off = run_eclipse(
        EclipseConfig.quick(seed=7, countermeasures=Countermeasures().without("netgroup_diversity"))
    ).report
    assert on["attacker_outbound_share"] <= on["share_bound"]  # type: ignore[operator]
    assert off["attacker_outbound_share"] > on["share_bound"]  # type: ignore[operator]
    assert off["countermeasures_label"] == "no netgroup_diversity"


def test_erebus_attacker_in_one_as_holds_one_slot_with_asmap_grouping() -> None:
    """Erebus's shape: the attacker's 4 /16s are one AS. With -asmap the victim sees one
    netgroup and gives it at most 1 of 10 slots; without, it may take up to 4."""
    on = run_eclipse(EclipseConfig.quick(seed=7, erebus=True)).report
    assert on["attacker_netgroups"] == 1 and on["share_bound"] == 0.1
    assert on["attacker_outbound_share"] <= 0.1  # type: ignore[operator]
    assert on["erebus"] is True
    cm = Countermeasures().without("asmap_grouping")
    off = run_eclipse(EclipseConfig.quick(seed=7, erebus=True, countermeasures=cm)).report
    assert off["attacker_netgroups"] == 4 and off["share_bound"] == 0.4
    assert off["attacker_outbound_share"] > 0.1  # type: ignore[operator]


def test_restart_without_anchors_and_without_rate_limit_run() -> None:
    cm = Countermeasures(anchors=False, addr_rate_limit=False, feelers=False)
    rep = run_eclipse(tiny(seed=5, countermeasures=cm)).report
    assert rep["countermeasures"] == {**Countermeasures().__dict__, **cm.__dict__}
    assert rep["restarts"] == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attacker_groups": 30}, "must be at least attacker_groups"),
        ({"attacker_addresses": -1}, "must be at least attacker_groups"),
        ({"attacker_groups": 0}, "attacker_groups must be at least 1"),
        ({"honest": 1}, "honest must be at least 2"),
        ({"restarts": 0}, "restarts must be at least 1"),
        ({"attacker_nodes": 25}, "attacker_nodes must be in"),
        ({"addrs_per_message": 1001}, "addrs_per_message"),
        ({"settle": 0.0}, "settle must be > 0"),
        ({"warmup": -5.0}, "warmup must be >= 0"),
        ({"honest_ases": 9}, "honest_ases must be in 1..honest"),
    ],
)
def test_eclipse_parameters_out_of_range_fail_before_anything_runs(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SimError, match=message):
        tiny(**changes)


def test_unknown_countermeasure_is_an_error() -> None:
    with pytest.raises(SimError, match="unknown countermeasure 'moat'"):
        Countermeasures().without("moat")


def test_wilson_interval() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 1000)
    assert lo == 0.0 and 0.003 < hi < 0.004
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_converge_fills_every_nodes_slots() -> None:
    res = run_converge(ConvergeConfig(nodes=24, hours=0.1, seed=2))
    rep = res.report
    assert rep["converged_nodes"] == 24
    assert rep["converged_after"] is not None and rep["converged_after"] <= 120  # type: ignore[operator]
    assert rep["outbound_netgroup_diversity"] == 1.0  # one node per /16: all distinct
    assert sum(rep["outbound_degree"].values()) == 24  # type: ignore[attr-defined]
    assert res.rows[-1]["full_relay_mean"] == 8
    with pytest.raises(SimError, match="hours must be > 0"):
        ConvergeConfig(hours=0)
    with pytest.raises(SimError, match="nodes must be at least 2"):
        ConvergeConfig(nodes=1)


# -- the command ---------------------------------------------------------------------------


def test_sim_eclipse_quick_twice_gives_the_same_trace(tmp_path: Path) -> None:
    """The issue's check: ``peerkeeper sim eclipse --quick --seed 7 --out DIR``."""
    reports = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["sim", "eclipse", "--quick", "--seed", "7", "--out", str(out)]) == 0
        reports.append(json.loads((out / "report.json").read_text()))
        with (out / "timeseries.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) > 10 and float(rows[-1]["t"]) > 0
        assert (out / "eclipse.png").read_bytes().startswith(b"\x89PNG")
    a, b = reports
    assert a["trace_sha256"] == b["trace_sha256"]
    for key in ("attacker_outbound_share", "eclipsed", "attacker_groups", "trace_sha256"):
        assert key in a
    assert a["attacker_outbound_share"] <= a["attacker_groups"] / 10
    assert a["command"] == [
        "peerkeeper",
        "sim",
        "eclipse",
        "--quick",
        "--seed",
        "7",
        "--out",
        str(tmp_path / "a"),
    ]


def test_sim_converge_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["sim", "converge", "--nodes", "12", "--hours", "0.05", "--out", str(out)]
    assert main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["scenario"] == "converge" and rep["nodes"] == 12
    assert rep["events_per_second"] > 0 and rep["plots"] == ["converge.png"]


def test_sim_bad_parameters_exit_1_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bad"
    args = ["sim", "eclipse", "--quick", "--attacker-groups", "9", "--attacker-addresses", "4"]
    assert main([*args, "--out", str(out)]) == 1
    assert "must be at least attacker_groups" in capsys.readouterr().err
    assert not out.exists()
    assert main(["sim", "eclipse", "--quick", "--without", "moat", "--out", str(out)]) == 1
    assert main(["sim", "eclipse", "--sweep", "colour=1,2", "--out", str(out)]) == 1
    assert "expected NAME=V1,V2" in capsys.readouterr().err
    assert not out.exists()


SWEEP = [
    "--nodes",
    "6",
    "--attacker-nodes",
    "2",
    "--attacker-groups",
    "2",
    "--restarts",
    "1",
    "--attack-hours",
    "0.02",
    "--settle",
    "30",
    "--quick",
    "--no-plots",
]


def test_sweep_in_a_process_pool_with_ablation(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = [
        "sim",
        "eclipse",
        *SWEEP,
        "--sweep",
        "attacker_addresses=4,8",
        "--seeds",
        "2",
        "--ablation",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    rep = json.loads((out / "sweep.json").read_text())
    assert rep["runs"] == 2 * 2 * (1 + len(Countermeasures.names()))
    assert not rep["failed_runs"]
    labels = {p["countermeasures"] for p in rep["points"]}
    assert "all on" in labels and "no anchors" in labels
    assert len(labels) == 1 + len(Countermeasures.names())
    assert all(p["runs"] == 2 and p["restarts"] == 2 for p in rep["points"])
    with (out / "sweep.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * len(labels)


def test_a_failing_sweep_run_is_reported_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = simcli.run_eclipse

    def flaky(cfg: EclipseConfig, **kw: Any) -> Any:
        if cfg.seed == 1 and cfg.attacker_addresses == 8:
            raise RuntimeError("worker lost")
        return real(cfg, **kw)

    monkeypatch.setattr(simcli, "run_eclipse", flaky)
    out = tmp_path / "f"
    args = [
        "sim",
        "eclipse",
        *SWEEP,
        "--sweep",
        "attacker_addresses=4,8",
        "--seeds",
        "2",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 3
    rep = json.loads((out / "sweep.json").read_text())
    assert [(r["seed"], r["attacker_addresses"], r["error"]) for r in rep["failed_runs"]] == [
        (1, 8, "RuntimeError: worker lost")
    ]
    point = next(p for p in rep["points"] if p["attacker_addresses"] == 8)
    assert point["runs"] == 1 and point["failed"] == [
        {"seed": 1, "error": "RuntimeError: worker lost"}
    ]
    assert "failed: seed 1" in capsys.readouterr().err


def test_sweep_on_a_dask_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="dask.distributed (the sim extra)")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        out = tmp_path / "d"
        args = [
            "sim",
            "eclipse",
            *SWEEP,
            "--sweep",
            "attacker_addresses=4,8",
            "--dask-scheduler",
            cluster.scheduler_address,
            "--out",
            str(out),
        ]
        assert main(args) == 0
    rep = json.loads((out / "sweep.json").read_text())
    assert rep["runs"] == 2 and not rep["failed_runs"]
    assert sorted(p["attacker_addresses"] for p in rep["points"]) == [4, 8]


def test_inbound_flood_eviction_drops_mostly_the_flood(tmp_path: Path) -> None:
    from peerkeeper.sim.flood import FloodConfig, run_inbound_flood

    cfg = FloodConfig.quick(seed=1, duration=360.0)
    res = run_inbound_flood(cfg)
    rep = res.report
    assert rep == run_inbound_flood(cfg).report  # deterministic
    # The flood fills the inbound slots, and eviction keeps honest peers anyway.
    assert max(r["inbound"] for r in res.rows) == rep["victim_inbound_slots"] == 29
    assert rep["flood_opened"] > rep["victim_inbound_slots"]  # type: ignore[operator]
    assert rep["honest_arrived"] > 0 and rep["honest_kept"] > 0  # type: ignore[operator]
    # Core's eviction picks from the netgroup with the most connections: the flood's.
    assert rep["honest_inbound_at_end"] >= rep["honest_kept"]  # type: ignore[operator]
    assert rep["flood_inbound_at_end"] < rep["victim_inbound_slots"]  # type: ignore[operator]
    out = tmp_path / "flood"
    args = ["sim", "inbound-flood", "--quick", "--flood-minutes", "3", "--out", str(out)]
    assert main(args) == 0
    assert json.loads((out / "report.json").read_text())["scenario"] == "inbound-flood"
    assert (out / "inbound-flood.png").exists()
    with pytest.raises(SimError, match="flood_addresses must be at least flooders"):
        FloodConfig(flooders=10, flood_addresses=5)
    with pytest.raises(SimError, match="flood_per_minute must be > 0"):
        FloodConfig(flood_per_minute=0)
