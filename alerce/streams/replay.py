"""Replay archived alerts through the pipeline on a Dask cluster.

The graph (a function returning streamz nodes, see :func:`build_pipeline`)::

    source (lists of files or packets)
      -> process_by_lane(run_batch)     Dask tasks: read + decode into an AlertBatch (per lane
                                        for ZTF packets routed on the client, else one task
                                        whose batch is split), then per lane: load state,
                                        correct, features, write
      -> buffer(max_in_flight)          backpressure: the source blocks when it is full
      -> gather_results                 small summaries back on the client
      -> sink(progress, summary)

The same nodes serve the live Kafka pipeline; only the source and the final sink differ.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from streamz import Stream

from alerce.batch import AlertBatch, DeadLetter
from alerce.io.sources import PacketBundle
from alerce.streams import nodes  # noqa: F401  (registers the Dask nodes on Stream)
from alerce.streams.cluster import dask_client, warm_up
from alerce.streams.nodes import BatchFailed, pipeline_source
from alerce.streams.steps import BatchSummary, PipelineConfig, run_batch


@dataclass
class ReplaySummary:
    """What a replay did."""

    alerts: int = 0
    bad_alerts: int = 0
    objects: int = 0
    detections: int = 0
    non_detections: int = 0
    forced_photometry: int = 0
    features: int = 0
    #: (object, band) pairs whose band-local features were reused from the store
    reused_bands: int = 0
    probabilities: int = 0
    batches: int = 0
    failed_batches: int = 0
    elapsed: float = 0.0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def alerts_per_second(self) -> float:
        return self.alerts / self.elapsed if self.elapsed > 0 else 0.0

    def add(self, result) -> None:
        self.batches += 1
        if isinstance(result, BatchFailed):
            self.failed_batches += 1
            self.errors.append(repr(result))
            return
        s: BatchSummary = result
        self.alerts += s.alerts
        self.bad_alerts += s.bad_alerts
        self.detections += s.detections
        self.non_detections += s.non_detections
        self.forced_photometry += s.forced_photometry
        self.features += s.features
        self.reused_bands += s.reused_bands
        self.probabilities += s.probabilities
        self.dead_letters.extend(s.dead_letters)
        self.errors.extend(s.errors)

    def format(self) -> str:
        """Human-readable closing summary."""
        lines = [
            f"alerts read      {self.alerts + self.bad_alerts:>10,}",
            f"alerts stored    {self.alerts:>10,}",
            f"bad alerts       {self.bad_alerts:>10,}",
            f"new objects      {self.objects:>10,}",
            f"detections       {self.detections:>10,}",
            f"non-detections   {self.non_detections:>10,}",
            f"forced phot.     {self.forced_photometry:>10,}",
            f"objects w/ feats {self.features:>10,}",
            f"probabilities    {self.probabilities:>10,}",
            f"elapsed          {self.elapsed:>10.1f} s",
            f"alerts/s         {self.alerts_per_second:>10,.0f}",
        ]
        if self.failed_batches or self.errors:
            lines.append(f"failed batches   {self.failed_batches:>10,}  (errors: {len(self.errors)})")
        return "\n".join(lines)


def decode_work(item: tuple[str, list], archive: str | None = None,
                keep_stamps: bool = True) -> AlertBatch:
    """Dask task: turn a work item into an :class:`AlertBatch`.

    ``("files", [paths or URLs])`` reads the files on the worker; ``("parquet", [paths])`` reads
    Parquet files of alerts; ``("packets", packets)`` decodes packets read on the client
    (tarball members, Kafka messages; a :class:`~alerce.io.sources.PacketBundle` or a list of
    :class:`~alerce.io.Packet`), archiving their raw bytes under ``archive`` if given.
    ``keep_stamps=False`` drops the cutouts (most of an alert's bytes) when no step needs them,
    so they are not shipped between workers.
    """
    from alerce.io import decode_packets, iter_packets, read_parquet_alerts

    kind, payload = item
    if kind == "parquet":
        batch = AlertBatch.concat(read_parquet_alerts(p) for p in payload)
        return batch if keep_stamps else batch.without_stamps()
    packets = list(iter_packets(payload)) if kind == "files" else payload
    batch = decode_packets(packets, keep_stamps=keep_stamps)
    if archive and kind == "packets":
        from alerce.streams.archive import archive_packets

        archive_packets(packets, batch, archive)
    return batch


def work_items(sources: str | Sequence[str], batch_size: int) -> Iterator[tuple[str, list]]:
    """Cut sources into work items of ``batch_size`` alerts (files are read by the workers)."""
    from alerce.io import iter_packets

    plain, parquet, streamed = [], [], []
    for src in expand_sources(sources):
        name = src.lower()
        if name.endswith(".parquet"):
            parquet.append(src)
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            streamed.append(src)
        else:
            plain.append(src)
    for chunk in _chunks(plain, batch_size):
        yield ("files", chunk)
    for path in parquet:
        yield ("parquet", [path])
    for chunk in _chunks(iter_packets(streamed), batch_size):
        yield ("packets", PacketBundle(chunk))


_SUFFIXES = (".avro", ".wire", ".parquet", ".tar.gz", ".tgz", ".tar")


def expand_sources(sources: str | Sequence[str]) -> list[str]:
    """Expand directories and globs (local or fsspec URLs) into the alert files they hold.

    Order is preserved for explicit lists; directories and globs are expanded in sorted order.

    Raises
    ------
    FileNotFoundError
        A source matches nothing.
    """
    import glob
    import os

    import fsspec

    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: list[str] = []
    for src in map(os.fspath, sources):
        if "://" in src and not src.startswith("file://"):
            fs, path = fsspec.core.url_to_fs(src)
            if any(ch in path for ch in "*?["):
                found = fs.glob(path)
            elif fs.isdir(path):
                found = [f for f in fs.find(path) if f.lower().endswith(_SUFFIXES)]
            else:
                found = [path] if fs.exists(path) else []
            files = [fs.unstrip_protocol(f) for f in sorted(found)]
        else:
            local = src[len("file://"):] if src.startswith("file://") else src
            if os.path.isdir(local):
                files = sorted(
                    os.path.join(root, name)
                    for root, _, names in os.walk(local)
                    for name in names
                    if name.lower().endswith(_SUFFIXES)
                )
            elif any(ch in local for ch in "*?["):
                files = sorted(f for f in glob.glob(local, recursive=True) if os.path.isfile(f))
            else:
                files = [local] if os.path.exists(local) else []
        if not files:
            raise FileNotFoundError(f"no alert files found at {src!r}")
        out.extend(files)
    return out


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def build_pipeline(source: Stream, client, config: PipelineConfig, *, n_lanes: int,
                   max_in_flight: int, archive: str | None = None, route_packets: bool = True) -> Stream:
    """Wire decode -> per-lane processing -> buffer -> gather; return the last node.

    ``source`` must emit work items (see :func:`decode_work`). ``route_packets=False`` decodes
    every item in one task and splits the decoded batch, even where the packets could be split
    by lane before decoding (see :func:`~alerce.streams.nodes.split_packets_by_lane`).
    """
    return (
        source.process_by_lane(client, n_lanes, run_batch, config,
                               decode=functools.partial(decode_work, archive=archive,
                                                        keep_stamps=config.stamp_classifier),
                               route_packets=route_packets)
        .buffer(max_in_flight)
        .gather_results()
    )


def replay(
    sources: str | Sequence[str],
    store: str = "sqlite:///alerce.db",
    *,
    client=None,
    scheduler: str | None = None,
    batch_size: int = 2000,
    n_lanes: int | None = None,
    max_in_flight: int | None = None,
    features: bool = True,
    stamp_classifier: bool = False,
    lc_classifier: bool = False,
    xmatch_catalog: str | None = None,
    dead_letter: str | None = None,
    progress: bool = False,
) -> ReplaySummary:
    """Replay archived alerts into a store.

    Parameters
    ----------
    sources : str or list of str
        Files, directories, globs, nightly tarballs, Parquet files or fsspec URLs.
    store : str
        SQLAlchemy URL of the store (created if needed).
    client : distributed.Client, optional
        Cluster to run on; default: the session's default client, else a LocalCluster started
        and closed here. ``scheduler`` connects to a running scheduler instead.
    batch_size : int
        Alerts per Dask batch (10^3-10^4 is the sweet spot; never one task per alert).
    n_lanes : int, optional
        Parallel lanes (default: number of worker threads). Alerts of one object always share a
        lane, so its light curve is updated by one batch at a time.
    max_in_flight : int, optional
        Batches submitted but not finished before the source blocks (default ``2 * n_lanes``).
    features, stamp_classifier, lc_classifier : bool
        Science steps to run after the correction.
    xmatch_catalog : str, optional
        HEALPix catalog directory to cross-match objects with (1 arcsec, nearest source).
    dead_letter : str, optional
        Directory where undecodable or failed packets are written with their reason.
    progress : bool
        Show a tqdm progress bar (alerts).

    Returns
    -------
    ReplaySummary
    """
    return run_work_items(
        work_items(sources, batch_size), store, client=client, scheduler=scheduler,
        n_lanes=n_lanes, max_in_flight=max_in_flight, features=features,
        stamp_classifier=stamp_classifier, lc_classifier=lc_classifier,
        xmatch_catalog=xmatch_catalog, dead_letter=dead_letter, progress=progress,
    )


def replay_packets(packets: Iterable, store: str = "sqlite:///alerce.db", *, batch_size: int = 2000,
                   **kwargs) -> ReplaySummary:
    """Like :func:`replay`, for packets already in memory (``alerce.io.Packet``)."""
    return run_work_items((("packets", PacketBundle(chunk)) for chunk in _chunks(packets, batch_size)),
                          store, **kwargs)


def run_work_items(items: Iterable[tuple[str, list]], store: str, *, client=None,
                   scheduler: str | None = None, n_lanes: int | None = None,
                   max_in_flight: int | None = None, features: bool = True,
                   stamp_classifier: bool = False, lc_classifier: bool = False,
                   xmatch_catalog: str | None = None, dead_letter: str | None = None,
                   progress: bool = False, route_packets: bool = True) -> ReplaySummary:
    """Push work items through :func:`build_pipeline` and wait for all of them."""
    from alerce.store import Store

    config = PipelineConfig(store_url=store, features=features, stamp_classifier=stamp_classifier,
                            lc_classifier=lc_classifier, xmatch_catalog=xmatch_catalog)
    with Store(store) as st:  # create the schema once, before workers race to do it
        before = st.count("object")
    summary = ReplaySummary()
    t0 = time.perf_counter()
    with dask_client(client, scheduler=scheduler) as c:
        if features:
            warm_up(c, features=True)
        lanes = n_lanes or max(1, sum(c.nthreads().values()))
        in_flight = max_in_flight or 2 * lanes
        source = pipeline_source()
        bar = _progress_bar(progress)
        done = {"n": 0}

        def _collect(result):
            summary.add(result)
            done["n"] += 1
            if bar is not None and not isinstance(result, BatchFailed):
                bar.update(result.alerts + result.bad_alerts)

        build_pipeline(source, c, config, n_lanes=lanes, max_in_flight=in_flight,
                       route_packets=route_packets).sink(_collect)
        emitted = 0
        for item in items:
            source.emit(item)
            emitted += 1
        while done["n"] < emitted:
            time.sleep(0.05)
        if bar is not None:
            bar.close()
    summary.elapsed = time.perf_counter() - t0
    with Store(store) as st:
        summary.objects = st.count("object") - before
    if dead_letter and summary.dead_letters:
        from alerce.io import write_dead_letters

        write_dead_letters(summary.dead_letters, dead_letter)
    return summary


def _progress_bar(enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(unit="alert", desc="replay", smoothing=0.1)
