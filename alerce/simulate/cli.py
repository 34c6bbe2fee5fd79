"""Command-line entry point: ``alerce simulate --out DIR --n-objects N --seed S [--nights K]``.

The top-level ``alerce`` CLI can delegate to :func:`main` (``main(argv)`` returns an exit code);
``python -m alerce.simulate.cli ...`` works on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from alerce.simulate.writer import DEFAULT_START_MJD, simulate


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the ``simulate`` options to ``parser`` (or a new one) and return it."""
    p = parser or argparse.ArgumentParser(
        prog="alerce simulate",
        description="Write a simulated ZTF (schema 4.02) alert stream with truth labels.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--n-objects", type=int, required=True, help="number of simulated objects")
    p.add_argument("--seed", type=int, required=True, help="random seed (deterministic output)")
    p.add_argument("--nights", type=int, default=1, help="number of nights (default 1)")
    p.add_argument("--start-mjd", type=float, default=DEFAULT_START_MJD,
                   help=f"MJD of the first night (default {DEFAULT_START_MJD})")
    p.add_argument("--tarball", action="store_true",
                   help="write nightly ztf_public_YYYYMMDD.tar.gz files")
    p.add_argument("--no-stamps", action="store_true", help="omit the image cutouts")
    p.add_argument("--mix", default=None,
                   help='class fractions as JSON, e.g. \'{"SNIa": 0.5, "RRL": 0.5}\'')
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    return p


def run(args: argparse.Namespace) -> int:
    """Run a simulation from parsed arguments; print the summary as JSON."""
    mix = json.loads(args.mix) if args.mix else None
    summary = simulate(args.out, args.n_objects, args.seed, nights=args.nights,
                       start_mjd=args.start_mjd, tarball=args.tarball, mix=mix,
                       stamps=not args.no_stamps, overwrite=args.overwrite)
    print(json.dumps({"out_dir": summary.out_dir, "n_objects": summary.n_objects,
                      "n_alerts": summary.n_alerts, "alerts_per_night": summary.alerts_per_night,
                      "elapsed_s": round(summary.elapsed, 2),
                      "alerts_per_s": round(summary.alerts_per_second, 1)}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"alerce simulate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
