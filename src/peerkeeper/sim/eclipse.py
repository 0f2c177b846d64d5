"""The eclipse-attack scenario (Heilman, Kendler, Zohar, Goldberg, USENIX Security 2015).

An attacker holding ``attacker_addresses`` addresses spread over ``attacker_groups`` /16
groups (Core PR #6355's stress pattern by default: 64 groups x 256 addresses) attacks one
honest node, the victim, in a network of ``honest`` real nodes:

1. warm-up: the honest network bootstraps from DNS seeds and settles;
2. attack: ``attacker_nodes`` attacker nodes (each a real ConnManCore answering on its
   share of the addresses, with those addresses in its address book so that a
   ``getaddr`` is answered with them) keep an inbound connection to the victim each
   (``-addnode`` on their side: they come back after an eviction or a restart) and send
   it ``addr`` messages of ``addrs_per_message`` attacker addresses every
   ``flood_interval`` seconds. Every address the victim dials is answered: an attacker
   address by the attacker, an honest one by its node;
3. restarts: the victim restarts ``restarts`` times, ``settle`` seconds apart (Heilman's
   attack waits for, or forces, a restart); each time, once its slots filled, the
   attacker's share of its outbound peers (8 full-relay + 2 block-relay-only) is taken.

The virtual Internet has autonomous systems (an asmap): each honest /16 is its own AS
(or they share ``honest_ases`` ASes), and so is each attacker /16, except in the
Erebus-like variant (``erebus``: Tran et al., IEEE S&P 2020), where all the attacker's
/16s are inside one AS.

The countermeasures (:class:`Countermeasures`) are the victim's; each can be switched off
to show what it buys. The victim is eclipsed when every outbound peer is the attacker's.
P(eclipse) over the restarts comes with a Wilson 95 % interval.

Everything here is a plain function over :class:`~peerkeeper.sim.network.Simulation`:
:func:`run_eclipse` returns an :class:`EclipseResult` (a JSON-ready ``report`` and the time
series ``rows``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

from peerkeeper.bitcoin.connman import ConnManOptions
from peerkeeper.bitcoin.peer import PeerConfig
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr
from peerkeeper.sim.network import (
    MAX_GROUPS,
    SIM_SERVICES,
    AsBlock,
    SimConfig,
    SimError,
    SimNode,
    Simulation,
    virtual_address,
)
from peerkeeper.wire.messages import Addr, AddrEntry

__all__ = [
    "Countermeasures",
    "EclipseConfig",
    "EclipseResult",
    "run_eclipse",
    "wilson_interval",
]

#: The victim's outbound slots Core fills: 8 full-relay + 2 block-relay-only (src/net.h).
OUTBOUND_SLOTS = 10
#: Core answers a getaddr with at most 23 % of its table (src/net_processing.cpp
#: ``MAX_PCT_ADDR_TO_SEND``), 1,000 at most: an attacker node keeps this many addresses so
#: that its answer is full.
_ATTACKER_BOOK = 4_400
_OUTBOUND = (ConnectionType.OUTBOUND_FULL_RELAY, ConnectionType.BLOCK_RELAY)
#: The attacker's AS numbers: one per /16 from here, or this one for all in the Erebus
#: variant (labels only; above the honest ones, within what asmap bytecode encodes).
ATTACKER_AS_BASE = 2_000_000


@dataclass(frozen=True)
class Countermeasures:
    """Core's defences against eclipse attacks, each on by default (Core has no switch for
    any of them; these exist for this study):

    * ``test_before_evict``: a new tried entry colliding with a working one waits for a
      feeler to test the old one (AddrMan ``Good_``, PR #9037);
    * ``feelers``: a short connection to a new-table address every 2 minutes on average
      (``ThreadOpenConnections``, PR #8282);
    * ``anchors``: the block-relay-only peers at shutdown are dialled first at start
      (anchors.dat, PR #15759);
    * ``tried_collisions``: collisions are resolved (``ResolveCollisions``);
    * ``netgroup_diversity``: one outbound peer per /16 (or AS) group;
    * ``asmap_grouping``: netgroups are ASes (Core's ``-asmap``, PR #16702; off by default
      in Core, on here because it is one of its defences): buckets, outbound diversity
      and eviction group the attacker's /16s by AS;
    * ``addr_rate_limit``: 0.1 address/s per peer (``MAX_ADDR_RATE_PER_SECOND``, PR #22387).
    """

    test_before_evict: bool = True
    feelers: bool = True
    anchors: bool = True
    tried_collisions: bool = True
    netgroup_diversity: bool = True
    asmap_grouping: bool = True
    addr_rate_limit: bool = True

    @classmethod
    def names(cls) -> list[str]:
        """The countermeasures' names, in order."""
        return [f.name for f in fields(cls)]

    def without(self, name: str) -> Countermeasures:
        """These countermeasures with ``name`` off; raises :class:`SimError` for an
        unknown name."""
        if name not in self.names():
            raise SimError(f"unknown countermeasure {name!r} (one of {', '.join(self.names())})")
        return replace(self, **{name: False})

    def label(self) -> str:
        """``"all on"`` or ``"no feelers, no anchors"``."""
        off = [n for n in self.names() if not getattr(self, n)]
        return "all on" if not off else ", ".join(f"no {n}" for n in off)


@dataclass(frozen=True)
class EclipseConfig:
    """The attack to run (times in simulated seconds).

    Args:
        honest: honest nodes (the victim is one of them; >= 2).
        attacker_addresses: addresses the attacker holds (>= attacker_groups).
        attacker_groups: /16 groups they are spread over (>= 1).
        attacker_nodes: attacker nodes sharing those addresses, each keeping one inbound
            connection to the victim (1 .. attacker_addresses).
        addrs_per_message: attacker addresses per ``addr`` message (1 .. 1000).
        flood_interval: seconds between an attacker node's ``addr`` messages (> 0).
        warmup: seconds the honest network runs before the attack (>= 0).
        attack: seconds of flooding before the first restart (>= 0).
        restarts: victim restarts to measure (>= 1).
        settle: seconds after a restart before its outbound peers are counted (> 0).
        sample_interval: seconds between time-series rows (> 0).
        seed: the random seed.
        countermeasures: the victim's.
        erebus: the attacker's /16s are all inside one AS (else one AS per /16).
        honest_ases: ASes the honest /16s are spread over (1 .. honest; default one
            per /16).

    Raises :class:`SimError` when a value is out of range.
    """

    honest: int = 100
    attacker_addresses: int = 64 * 256
    attacker_groups: int = 64
    attacker_nodes: int = 32
    addrs_per_message: int = 10
    flood_interval: float = 10.0
    warmup: float = 1800.0
    attack: float = 4 * 3600.0
    restarts: int = 20
    settle: float = 300.0
    sample_interval: float = 60.0
    seed: int = 0
    countermeasures: Countermeasures = field(default_factory=Countermeasures)
    erebus: bool = False
    honest_ases: int | None = None

    def __post_init__(self) -> None:
        if self.honest < 2:
            raise SimError(f"honest must be at least 2, not {self.honest}")
        if self.honest_ases is not None and not 1 <= self.honest_ases <= self.honest:
            raise SimError(f"honest_ases must be in 1..honest, not {self.honest_ases}")
        if self.attacker_groups < 1:
            raise SimError(f"attacker_groups must be at least 1, not {self.attacker_groups}")
        if self.attacker_addresses < self.attacker_groups:
            raise SimError(
                f"attacker_addresses ({self.attacker_addresses}) must be at least "
                f"attacker_groups ({self.attacker_groups}): a group holds one address or more"
            )
        if self.honest + self.attacker_groups > MAX_GROUPS:
            raise SimError("too many netgroups for the virtual address space")
        if not 1 <= self.attacker_nodes <= self.attacker_addresses:
            raise SimError(
                f"attacker_nodes must be in 1..attacker_addresses, not {self.attacker_nodes}"
            )
        if not 1 <= self.addrs_per_message <= 1000:
            raise SimError(f"addrs_per_message must be in 1..1000, not {self.addrs_per_message}")
        if self.restarts < 1:
            raise SimError(f"restarts must be at least 1, not {self.restarts}")
        for name in ("flood_interval", "settle", "sample_interval"):
            if not getattr(self, name) > 0:
                raise SimError(f"{name} must be > 0, not {getattr(self, name)}")
        for name in ("warmup", "attack"):
            if getattr(self, name) < 0:
                raise SimError(f"{name} must be >= 0, not {getattr(self, name)}")

    @classmethod
    def quick(cls, **changes: object) -> EclipseConfig:
        """A small attack that runs in seconds: 30 honest nodes, 4 groups x 64 addresses,
        20 minutes of flooding, 5 restarts."""
        base = cls(
            honest=30,
            attacker_addresses=256,
            attacker_groups=4,
            attacker_nodes=8,
            warmup=600.0,
            attack=1200.0,
            restarts=5,
            settle=120.0,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    @property
    def duration(self) -> float:
        """Simulated seconds the whole run takes."""
        return self.warmup + self.attack + self.restarts * self.settle

    @property
    def attacker_netgroups(self) -> int:
        """The attacker's netgroups as the victim groups them: 1 in the Erebus variant
        with ``asmap_grouping`` on, else ``attacker_groups``."""
        return 1 if self.erebus and self.countermeasures.asmap_grouping else self.attacker_groups

    def as_blocks(self) -> tuple[AsBlock, ...]:
        """The attacker's /16s in the virtual asmap (they follow the honest groups)."""
        if self.erebus:
            return (AsBlock(self.honest, self.attacker_groups, ATTACKER_AS_BASE),)
        return tuple(
            AsBlock(self.honest + g, 1, ATTACKER_AS_BASE + g) for g in range(self.attacker_groups)
        )


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95 % for ``z=1.96``)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EclipseResult:
    """``report``: the JSON-ready summary; ``rows``: the time series (one dict per
    sample: ``t`` seconds, ``phase``, outbound counts, address-book composition)."""

    report: dict[str, object]
    rows: list[dict[str, object]]


ROW_FIELDS = [
    "t",
    "phase",
    "outbound",
    "attacker_outbound",
    "attacker_share",
    "new_total",
    "new_attacker",
    "tried_total",
    "tried_attacker",
    "inbound",
    "attacker_inbound",
]


class _Attack:
    """The running attack: the simulation, its victim and attacker nodes, what was seen."""

    def __init__(self, cfg: EclipseConfig, progress: Callable[[float, int], None] | None):
        self.cfg = cfg
        self.progress = progress
        cm = cfg.countermeasures

        def victim_options(index: int, opts: ConnManOptions) -> ConnManOptions:
            if index != 0:
                return opts
            return replace(
                opts,
                feelers=cm.feelers,
                netgroup_diversity=cm.netgroup_diversity,
                peer=replace(opts.peer, addr_rate_limit=cm.addr_rate_limit),
            )

        sim_cfg = SimConfig(
            nodes=cfg.honest,
            seed=cfg.seed,
            asmap=True,
            ases=cfg.honest_ases,
            as_blocks=cfg.as_blocks(),
        )
        self.sim = Simulation(
            sim_cfg, options=victim_options, use_asmap=lambda i: i != 0 or cm.asmap_grouping
        )
        self.victim = self.sim.nodes[0]
        self.victim.tags.add("victim")
        self._apply_addrman_switches()
        port = self.sim.chain.default_port
        self.addresses = [
            virtual_address(k, cfg.attacker_groups, port, first_group=cfg.honest)
            for k in range(cfg.attacker_addresses)
        ]
        self.attacker_addrs: set[NetAddr] = {s.addr for s in self.addresses}
        self.attackers: list[SimNode] = []
        self.rows: list[dict[str, object]] = []
        self.restarts: list[dict[str, object]] = []
        self.phase = "warmup"

    def _apply_addrman_switches(self) -> None:
        am = self.victim.core.addrman
        am.test_before_evict = self.cfg.countermeasures.test_before_evict
        am.resolve_tried_collisions = self.cfg.countermeasures.tried_collisions

    # -- the attacker -------------------------------------------------------------------

    def start_attack(self) -> None:
        cfg, sim = self.cfg, self.sim
        self.phase = "attack"
        n = cfg.attacker_nodes
        for j in range(n):
            own = self.addresses[j::n]
            opts = replace(
                sim.default_options(),
                max_connections=len(self.addresses) + 1000,
                automatic_outbound=False,
                dnsseed=False,
                addnode=[str(self.victim.service)],
                peer=PeerConfig(services=SIM_SERVICES),
            )
            node = sim.add_node(own[0], opts, aliases=own[1:], tags={"attacker"})
            book = self._sample(min(_ATTACKER_BOOK, len(self.addresses)))
            node.core.addrman.add(book, None, now=sim.clock)
            self.attackers.append(node)
        sim.call_at(sim.now + cfg.flood_interval, self.flood)

    def _sample(self, k: int) -> list[AddrEntry]:
        rng = self.sim.rng
        t = int(self.sim.clock)
        return [
            AddrEntry(t - rng.randrange(600), SIM_SERVICES, s)
            for s in rng.sample(self.addresses, min(k, len(self.addresses)))
        ]

    def flood(self) -> None:
        """Every attacker node sends the victim one ``addr`` of its addresses."""
        sim = self.sim
        victim_svc = self.victim.service
        for node in self.attackers:
            core = node.core
            for peer in list(core.peers.values()):
                if peer.addr == victim_svc and peer.proto.successfully_connected:
                    msg = Addr(self._sample(self.cfg.addrs_per_message))
                    core.send_message(peer.id, msg, sim.clock, steady=sim.clock)
        sim.call_at(sim.now + self.cfg.flood_interval, self.flood)

    # -- measuring ------------------------------------------------------------------------

    def outbound(self) -> tuple[int, int]:
        """(outbound peers, of them the attacker's) of the victim."""
        peers = self.victim.outbound_peers(*_OUTBOUND)
        return len(peers), sum(1 for s in peers if s.addr in self.attacker_addrs)

    def sample(self) -> None:
        sim, cfg = self.sim, self.cfg
        total, bad = self.outbound()
        counts = {"new_total": 0, "new_attacker": 0, "tried_total": 0, "tried_attacker": 0}
        for info in self.victim.core.addrman.infos():
            table = "tried" if info.in_tried else "new"
            counts[f"{table}_total"] += 1
            if info.service.addr in self.attacker_addrs:
                counts[f"{table}_attacker"] += 1
        inbound = [p for p in self.victim.core.peers.values() if p.inbound and not p.closed]
        self.rows.append(
            {
                "t": round(sim.now, 3),
                "phase": self.phase,
                "outbound": total,
                "attacker_outbound": bad,
                "attacker_share": bad / max(OUTBOUND_SLOTS, total),
                **counts,
                "inbound": len(inbound),
                "attacker_inbound": sum(1 for p in inbound if p.addr.addr in self.attacker_addrs),
            }
        )
        if self.progress is not None:
            self.progress(sim.now, sim.events)
        sim.call_at(sim.now + cfg.sample_interval, self.sample)

    def restart(self) -> None:
        self.phase = "restarts"
        self.sim.restart(0, anchors=self.cfg.countermeasures.anchors)
        self._apply_addrman_switches()
        self.sim.call_at(self.sim.now + self.cfg.settle, self.count_restart)

    def count_restart(self) -> None:
        total, bad = self.outbound()
        self.restarts.append(
            {
                "t": round(self.sim.now, 3),
                "outbound": total,
                "attacker_outbound": bad,
                "eclipsed": total > 0 and bad == total,
            }
        )
        if len(self.restarts) < self.cfg.restarts:
            # After any sample due at this instant, so that it shows the victim before
            # it goes down rather than the empty restarted one.
            self.sim.call_at(self.sim.now, self.restart)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> EclipseResult:
        cfg, sim = self.cfg, self.sim
        sim.call_at(0.0, self.sample)
        sim.call_at(cfg.warmup, self.start_attack)
        # Queued at that instant, so after the sample due then (see count_restart).
        sim.call_at(cfg.warmup + cfg.attack, lambda: sim.call_at(sim.now, self.restart))
        sim.run_until(cfg.duration)
        return EclipseResult(self.report(), self.rows)

    def report(self) -> dict[str, object]:
        cfg = self.cfg
        n = len(self.restarts)
        eclipsed = sum(1 for r in self.restarts if r["eclipsed"])
        free = sum(1 for r in self.restarts if r["attacker_outbound"] == 0)
        shares = [
            int(r["attacker_outbound"]) / max(OUTBOUND_SLOTS, int(r["outbound"]))  # type: ignore[call-overload]
            for r in self.restarts
        ]
        sampled = [float(r["attacker_share"]) for r in self.rows]  # type: ignore[arg-type]
        lo, hi = wilson_interval(eclipsed, n)
        params = asdict(cfg)
        params.pop("countermeasures")
        return {
            "scenario": "eclipse",
            "params": params,
            "countermeasures": asdict(cfg.countermeasures),
            "countermeasures_label": cfg.countermeasures.label(),
            "attacker_groups": cfg.attacker_groups,
            "attacker_netgroups": cfg.attacker_netgroups,
            "erebus": cfg.erebus,
            "attacker_addresses": cfg.attacker_addresses,
            "restarts": n,
            "eclipsed_restarts": eclipsed,
            "p_eclipse": eclipsed / n if n else 0.0,
            "p_eclipse_ci95": [lo, hi],
            "attacker_free_restarts": free,
            "p_attacker_free": free / n if n else 0.0,
            "attacker_outbound_share": max([*shares, *sampled], default=0.0),
            "attacker_outbound_share_mean": sum(shares) / n if n else 0.0,
            "share_bound": cfg.attacker_netgroups / OUTBOUND_SLOTS,
            "eclipsed": eclipsed > 0,
            "restart_outcomes": self.restarts,
            "simulated_seconds": cfg.duration,
            "events": self.sim.events,
            "trace_sha256": self.sim.trace_sha256,
        }


def run_eclipse(
    cfg: EclipseConfig, *, progress: Callable[[float, int], None] | None = None
) -> EclipseResult:
    """Run the eclipse attack ``cfg`` describes (see the module docstring).

    ``progress(simulated_seconds, events)`` is called at every sample. The report's
    ``attacker_outbound_share`` is the largest share of the victim's outbound slots (10,
    or 11 while the extra block-relay-only peer is up) the attacker held, at a restart or
    a sample (with netgroup diversity on it is at most ``attacker_netgroups / 10``); ``eclipsed`` says whether any restart ended with every
    outbound peer the attacker's; ``p_eclipse`` with ``p_eclipse_ci95`` is their share
    of the restarts; ``trace_sha256`` identifies the run (same config, same hash).
    """
    return _Attack(cfg, progress).run()
