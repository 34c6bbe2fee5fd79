"""The ``alerce`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _replay(args: argparse.Namespace) -> int:
    from alerce.streams.gateway import client_from_args
    from alerce.streams.replay import replay

    with client_from_args(args) as client:
        summary = replay(
            args.sources,
            store=args.store,
            client=client,
            scheduler=args.scheduler,
            batch_size=args.batch_size,
            n_lanes=args.lanes,
            features=not args.no_features,
            stamp_classifier=args.stamps,
            lc_classifier=args.lc_classifier,
            xmatch_catalog=args.xmatch_catalog,
            dead_letter=args.dead_letter,
            progress=not args.no_progress,
        )
    print(summary.format())
    for err in summary.errors[:5]:
        print("error:", err.splitlines()[0], file=sys.stderr)
    return 0 if not summary.failed_batches else 1


def _stream(args: argparse.Namespace) -> int:
    from alerce.streams.gateway import client_from_args
    from alerce.streams.live import stream

    with client_from_args(args) as client:
        summary = stream(
            args.kafka, args.topic, args.group, store=args.store, output_topic=args.output_topic,
            archive=args.archive, dead_letter=args.dead_letter, client=client,
            scheduler=args.scheduler, batch_size=args.batch_size, features=not args.no_features,
            stamp_classifier=args.stamps, lc_classifier=args.lc_classifier,
            idle_timeout=args.idle_timeout, max_messages=args.max_messages,
            **{name: value for name, value in (("max_batches_in_flight", args.max_batches_in_flight),
                                               ("linger", args.linger)) if value is not None},
        )
    print(summary.format())
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from alerce.streams.reconcile import reconcile

    report = reconcile(args.store, kafka=args.kafka, topics=args.topic, archive=args.archive,
                       push=not args.dry_run, client=None)
    print(report.format())
    return 0 if report.missing_after == 0 or args.dry_run else 1


def _simulate(args: argparse.Namespace) -> int:
    from alerce.simulate import simulate

    result = simulate(args.out, n_objects=args.n_objects, seed=args.seed, nights=args.nights,
                      tarball=args.tarball)
    print(result)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from alerce.demo import run_demo

    return run_demo(out=args.out, n_objects=args.n_objects, seed=args.seed)


def _db_upgrade(args: argparse.Namespace) -> int:
    from alerce.store import upgrade
    from alerce.store.engine import create_engine
    from alerce.store.version import stored_version

    engine = create_engine(args.store)
    try:
        with engine.connect() as conn:
            before = stored_version(conn)
    finally:
        engine.dispose()
    after = upgrade(args.store)
    if before == after:
        print(f"{args.store}: schema version {after}, up to date")
    else:
        print(f"{args.store}: schema version {before if before is not None else '(empty)'} -> {after}")
    return 0


def _delegate(module: str, function: str, argv: Sequence[str]) -> int:
    """Run a sub-command implemented as ``main(argv)`` in its own module."""
    import importlib

    return int(getattr(importlib.import_module(module), function)(list(argv)) or 0)


#: Sub-commands implemented as ``main(argv)`` elsewhere (they parse their own options).
_DELEGATED = {
    "evaluate": ("alerce.classifiers.lc.evaluate", "evaluate_main",
                 "evaluate a light-curve model bundle (report folder)"),
    "export": ("alerce.query.export", "main_export", "export a table or query to Parquet/CSV"),
    "catalog": ("alerce.xmatch", "main_catalog", "build a HEALPix-partitioned catalog"),
    "xmatch": ("alerce.xmatch", "main_service", "cross-match a user CSV with the store"),
}

_TRAINERS = {
    "stamps": ("alerce.classifiers.stamp", "main"),
    "lc": ("alerce.classifiers.lc.train", "main"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``alerce`` command (all subcommands)."""
    from alerce.streams.gateway import add_gateway_arguments

    p = argparse.ArgumentParser(prog="alerce", description="Alert streams to classified science.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="replay archived alerts into a store on Dask")
    r.add_argument("sources", nargs="+", help="files, directories, globs, tarballs, Parquet, URLs")
    r.add_argument("--store", default="sqlite:///alerce.db", help="SQLAlchemy URL of the store")
    r.add_argument("--scheduler", help="address of a running Dask scheduler")
    r.add_argument("--batch-size", type=int, default=2000, help="alerts per Dask batch")
    r.add_argument("--lanes", type=int, help="parallel per-object lanes (default: worker threads)")
    r.add_argument("--no-features", action="store_true", help="skip the feature step")
    r.add_argument("--stamps", action="store_true", help="run the stamp classifier (needs torch)")
    r.add_argument("--lc-classifier", action="store_true", help="run the light-curve classifier")
    r.add_argument("--xmatch-catalog", help="HEALPix catalog to cross-match objects with (1 arcsec)")
    r.add_argument("--dead-letter", help="directory for undecodable packets")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_gateway_arguments(r)
    r.set_defaults(func=_replay)

    k = sub.add_parser("stream", help="process a live Kafka alert stream")
    k.add_argument("--kafka", required=True, help="bootstrap servers host:port")
    k.add_argument("--topic", required=True, help="topics, glob (ztf_*_programid1) or ^regex")
    k.add_argument("--group", required=True, help="consumer group")
    k.add_argument("--store", default="sqlite:///alerce.db")
    k.add_argument("--output-topic", help="publish annotated alerts to this topic")
    k.add_argument("--archive", help="archive raw packets per night under this directory/URL")
    k.add_argument("--dead-letter", help="directory for poison messages")
    k.add_argument("--scheduler", help="address of a running Dask scheduler")
    k.add_argument("--batch-size", type=int, default=1000)
    k.add_argument("--max-batches-in-flight", type=int, default=None,
                   help="batches submitted but not stored before messages are held back (default 1)")
    k.add_argument("--linger", type=float, default=None,
                   help="seconds a partial batch waits for more messages while another runs (default 1)")
    k.add_argument("--no-features", action="store_true")
    k.add_argument("--stamps", action="store_true")
    k.add_argument("--lc-classifier", action="store_true")
    k.add_argument("--idle-timeout", type=float, help="stop after this many idle seconds")
    k.add_argument("--max-messages", type=int, help="stop after this many messages")
    add_gateway_arguments(k)
    k.set_defaults(func=_stream)

    rc = sub.add_parser("reconcile", help="compare a night with the store and push what is missing")
    rc.add_argument("--store", default="sqlite:///alerce.db")
    rc.add_argument("--kafka", help="bootstrap servers (with --topic)")
    rc.add_argument("--topic", help="topic(s) to re-read from the first offset")
    rc.add_argument("--archive", nargs="+", help="archived packets to re-read instead of Kafka")
    rc.add_argument("--dry-run", action="store_true", help="only report")
    rc.set_defaults(func=_reconcile)

    s = sub.add_parser("simulate", help="write a simulated ZTF-like night of alerts")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--n-objects", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nights", type=int, default=1)
    s.add_argument("--tarball", action="store_true", help="write nightly ztf_public_*.tar.gz")
    s.set_defaults(func=_simulate)

    d = sub.add_parser("demo", help="simulate a night, replay it, print a summary")
    d.add_argument("--out", default="demo_output", help="working directory")
    d.add_argument("--n-objects", type=int, default=3000)
    d.add_argument("--seed", type=int, default=42)
    d.set_defaults(func=_demo)

    db = sub.add_parser("db", help="store maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="migrate a store to the current schema version")
    up.add_argument("--store", default="sqlite:///alerce.db")
    up.set_defaults(func=_db_upgrade)

    t = sub.add_parser("train", help="train a model: stamps (CNN) or lc (hierarchical forest)")
    t.add_argument("what", choices=sorted(_TRAINERS), help="which model")
    t.add_argument("rest", nargs=argparse.REMAINDER, help="options of the trainer (--help)")
    t.set_defaults(func=lambda a: _delegate(*_TRAINERS[a.what], a.rest))

    for name, (module, function, text) in _DELEGATED.items():
        d = sub.add_parser(name, help=text, add_help=False)
        d.add_argument("rest", nargs=argparse.REMAINDER)
        d.set_defaults(func=lambda a, m=module, f=function: _delegate(m, f, a.rest))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alerce`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        module, function, _ = _DELEGATED[argv[0]]
        return _delegate(module, function, argv[1:])
    if len(argv) > 1 and argv[0] == "train" and argv[1] in _TRAINERS:
        return _delegate(*_TRAINERS[argv[1]], argv[2:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
