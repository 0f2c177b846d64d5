"""The ``peerkeeper lab`` and ``peerkeeper crawl`` commands (argument parsing and running).

``peerkeeper lab --nodes N [--port-base P] [--seconds S] [--write-dialmap FILE]``: a
local network of N nodes (:mod:`peerkeeper.daemon.lab`).
``peerkeeper crawl [--seed ADDR]... [--dns-seed NAME]... [--peers-dat FILE]
[--dialmap FILE] [--concurrency N] [--rate R] [--out crawl.sqlite] [--json FILE]
[--csv FILE]``: a crawl (:mod:`peerkeeper.daemon.crawler`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from peerkeeper.bitcoin.seeds import DNS_SEEDS
from peerkeeper.io.malloc import tune_malloc

__all__ = ["add_lab_parsers", "run_crawl_command", "run_lab_command"]


def add_lab_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``lab`` and ``crawl`` to the ``peerkeeper`` command's subcommands."""
    lab = sub.add_parser(
        "lab",
        help="run a local network of N nodes on loopback (virtual routable addresses)",
        description="Run N Bitcoin-protocol nodes on 127.0.0.1, each known to the others by a "
        "routable virtual address, until Ctrl-C. Prints each node's address and RPC port.",
    )
    lab.add_argument("--nodes", type=int, default=10, help="how many nodes (default 10)")
    lab.add_argument(
        "--port-base",
        type=int,
        default=0,
        metavar="P",
        help="node i listens on P+2i and serves RPC on P+2i+1 (default: ports the OS picks)",
    )
    lab.add_argument("--seconds", type=float, help="stop after S seconds (default: Ctrl-C)")
    lab.add_argument(
        "--write-dialmap",
        type=Path,
        metavar="FILE",
        help="write the virtual->loopback map for `peerkeeper node/crawl --dialmap FILE`",
    )
    lab.add_argument("--datadir", type=Path, help="keep the nodes' data in DIR/node<i>")
    lab.add_argument("--rpc", type=int, choices=(0, 1), default=1, help="serve RPC (default 1)")
    lab.add_argument(
        "--outbound",
        type=int,
        choices=(0, 1),
        default=1,
        help="nodes connect to each other automatically (default 1)",
    )
    lab.add_argument("--blocks", type=int, default=10, help="regtest headers every node has")
    lab.add_argument("--seed", type=int, default=1, help="random seed of who knows whom")
    lab.add_argument(
        "--core-getaddr",
        action="store_true",
        help="answer getaddr with Core's 23%% of the address book even in a lab of 65 nodes"
        " or fewer (there, by default, all of it: a crawl then finds every node)",
    )

    crawl = sub.add_parser(
        "crawl",
        help="visit every reachable node of a network: handshake, getaddr, record",
        description="Breadth-first crawl from seeds: connect (v2, v1 fallback), handshake, "
        "getaddr, record, disconnect. Records go to --out (resumable), --json and --csv.",
    )
    crawl.add_argument(
        "--chain", default="main", choices=("main", "test", "testnet4", "signet", "regtest")
    )
    crawl.add_argument("--regtest", action="store_true", help="same as --chain regtest")
    crawl.add_argument("--seed", action="append", default=[], metavar="ADDR", help="start here")
    crawl.add_argument(
        "--dns-seed",
        action="append",
        default=None,
        metavar="NAME",
        help="resolve NAME for seeds (default: the chain's DNS seeds when no other seed is given)",
    )
    crawl.add_argument("--peers-dat", type=Path, metavar="FILE", help="seeds from a peers.dat")
    crawl.add_argument("--dialmap", type=Path, metavar="FILE", help="a lab's dial map")
    crawl.add_argument("--concurrency", type=int, default=256, help="visits at once (default 256)")
    crawl.add_argument(
        "--rate", type=float, default=0.0, help="visits started per second at most (0: no limit)"
    )
    crawl.add_argument("--max-nodes", type=int, default=0, help="stop after N visits (0: all)")
    crawl.add_argument("--proxy", "-proxy", action="append", default=[], help="SOCKS5 proxy")
    crawl.add_argument("--onion", "-onion", help="SOCKS5 proxy for onion addresses")
    crawl.add_argument("--i2psam", "-i2psam", help="I2P SAM bridge HOST[:PORT] for I2P addresses")
    crawl.add_argument("--dnsserver", action="append", default=[], help="DNS server HOST[:PORT]")
    crawl.add_argument("--out", type=Path, metavar="FILE", help="SQLite records (resumable)")
    crawl.add_argument("--json", type=Path, metavar="FILE", help="write the records as JSON")
    crawl.add_argument("--csv", type=Path, metavar="FILE", help="write the records as CSV")
    crawl.add_argument("--edges", action="store_true", help="keep who gave whom (in --out)")
    crawl.add_argument("--quiet", action="store_true", help="no progress line")


def run_lab_command(args: argparse.Namespace) -> int:
    """``peerkeeper lab``: 0 after Ctrl-C or ``--seconds``; 1 when it cannot start."""
    from peerkeeper.daemon.lab import LabOptions, run_lab

    if args.nodes < 1:
        print("Error: --nodes must be at least 1", file=sys.stderr)
        return 1
    if args.seconds is not None and args.seconds <= 0:
        print("Error: --seconds must be positive", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    options = LabOptions(
        nodes=args.nodes,
        port_base=args.port_base,
        datadir=args.datadir,
        rpc=bool(args.rpc),
        outbound=bool(args.outbound),
        seed=args.seed,
        blocks=args.blocks,
        getaddr_all=False if args.core_getaddr else None,
    )
    tune_malloc()
    try:
        return asyncio.run(
            run_lab(options, seconds=args.seconds, dialmap_file=args.write_dialmap, out=sys.stdout)
        )
    except KeyboardInterrupt:
        return 0


def run_crawl_command(args: argparse.Namespace) -> int:
    """``peerkeeper crawl``: 0 when the crawl ends (or is interrupted: ``--out`` keeps it)."""
    from peerkeeper.daemon.config import ConfigError
    from peerkeeper.daemon.crawler import CrawlOptions, run_crawl
    from peerkeeper.io.crawldb import CrawlDBError
    from peerkeeper.io.dialmap import DialMapError
    from peerkeeper.net.netaddr import AddrError

    chain = "regtest" if args.regtest else args.chain
    dns_seeds = args.dns_seed
    if dns_seeds is None:
        given = args.seed or args.peers_dat is not None
        dns_seeds = [] if given else list(DNS_SEEDS.get(chain, ()))
    opts = CrawlOptions(
        chain=chain,
        seeds=list(args.seed),
        dns_seeds=dns_seeds,
        peers_dat=args.peers_dat,
        concurrency=args.concurrency,
        rate=args.rate,
        dialmap=args.dialmap,
        proxy=list(args.proxy),
        onion=args.onion,
        i2psam=args.i2psam,
        dnsserver=list(args.dnsserver),
        out=args.out,
        edges=args.edges,
        max_nodes=args.max_nodes,
    )
    if not (opts.seeds or opts.dns_seeds or opts.peers_dat):
        print(
            "Error: no seeds: give --seed ADDR, --dns-seed NAME or --peers-dat FILE",
            file=sys.stderr,
        )
        return 1
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    progress = None if args.quiet else sys.stderr
    tune_malloc()
    try:
        asyncio.run(run_crawl(opts, json_out=args.json, csv_out=args.csv, progress=progress))
    except KeyboardInterrupt:
        print(
            "interrupted" + (f": {args.out} keeps the crawl" if args.out else ""), file=sys.stderr
        )
        return 0
    except (ConfigError, CrawlDBError, DialMapError, AddrError, OSError, ValueError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0
