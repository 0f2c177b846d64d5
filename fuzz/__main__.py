"""``python -m fuzz --list`` | ``python -m fuzz TARGET [--runs N] [--seconds S]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / ".fuzz-corpus"
#: Where libFuzzer writes a finding (crash-*, timeout-*, slow-unit-*), per target.
ARTIFACTS = Path(__file__).resolve().parents[1] / ".fuzz-artifacts"


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    p.add_argument("target", nargs="?", help="the target to run (see --list)")
    p.add_argument("--list", action="store_true", help="name the targets and stop")
    p.add_argument("--runs", type=int, default=0, help="stop after N inputs (0: no limit)")
    p.add_argument("--seconds", type=int, default=0, help="stop after S seconds (0: no limit)")
    p.add_argument("--corpus", type=Path, help="corpus directory (default .fuzz-corpus/TARGET)")
    args, libfuzzer = p.parse_known_args()

    import atheris

    with atheris.instrument_imports(include=["peerkeeper"]):
        from fuzz.targets import TARGETS

    if args.list or not args.target:
        for name, t in TARGETS.items():
            print(f"{name:24} {'slow' if t.slow else 'fast'}")
        return 0
    target = TARGETS.get(args.target)
    if target is None:
        print(f"unknown target {args.target!r}; see python -m fuzz --list", file=sys.stderr)
        return 2
    corpus = args.corpus or CORPUS / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(target.seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    allowed = target.allowed
    run = target.run

    def one_input(data: bytes) -> None:
        try:  # noqa: SIM105 - the hot path: a try costs less than contextlib.suppress
            run(data)
        except allowed:
            pass

    artifacts = ARTIFACTS / args.target
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        "-timeout=1",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={artifacts}/",
        *libfuzzer,
        str(corpus),
    ]
    if args.runs:
        argv.append(f"-runs={args.runs}")
    if args.seconds:
        argv.append(f"-max_total_time={args.seconds}")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
