"""Running the pipeline on a cluster created through a dask-gateway server.

Every pipeline entry point (:func:`~alerce.streams.replay.replay`,
:func:`~alerce.streams.live.stream`, ...) takes ``client=``; :func:`gateway_client` gives one::

    from dask_gateway import BasicAuth
    from alerce.streams.gateway import gateway_client
    from alerce.streams.replay import replay

    with gateway_client("https://gateway.example.org", auth=BasicAuth("me", "pw"),
                        n_workers=8) as client:
        replay("alerts/2024*/", store="postgresql+psycopg://...", client=client)

A gateway cluster is *not* reachable as ``--scheduler gateway://...``: its scheduler sits behind
the gateway proxy, needs the TLS credentials the gateway issues per cluster and a cluster name.
The command line therefore takes ``--gateway URL`` (see :func:`add_gateway_arguments` and
:func:`client_from_args`) and :func:`check_scheduler_address` rejects gateway addresses given as
a scheduler with an explanation.

``dask-gateway`` is an optional dependency (the ``gateway`` extra); it is imported lazily.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

_INSTALL_HINT = ("dask-gateway is not installed; install the 'gateway' extra: "
                 "pip install 'alerce-broker[gateway]'")


def _import_gateway():
    try:
        import dask_gateway
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from exc
    return dask_gateway


def _adapt_bounds(adapt: Any) -> tuple[int, int] | None:
    """Normalise ``adapt`` to ``(minimum, maximum)`` or None; raise ValueError when malformed."""
    if adapt is None or adapt is False:
        return None
    if isinstance(adapt, Mapping):
        unknown = set(adapt) - {"minimum", "maximum"}
        if unknown:
            raise ValueError(f"adapt: unknown keys {sorted(unknown)} (use 'minimum' and 'maximum')")
        lo, hi = adapt.get("minimum", 0), adapt.get("maximum")
    elif isinstance(adapt, (tuple, list)) and len(adapt) == 2:
        lo, hi = adapt
    else:
        raise ValueError(f"adapt must be None, (minimum, maximum) or a dict of them, got {adapt!r}")
    if hi is None:
        raise ValueError("adapt: a maximum number of workers is required")
    if isinstance(lo, bool) or isinstance(hi, bool) or int(lo) != lo or int(hi) != hi:
        raise ValueError(f"adapt bounds must be integers, got {adapt!r}")
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi < 1 or lo > hi:
        raise ValueError(f"adapt bounds must satisfy 0 <= minimum <= maximum, maximum >= 1; got {adapt!r}")
    return lo, hi


@contextlib.contextmanager
def gateway_client(
    address: str | None,
    *,
    proxy_address: str | int | None = None,
    auth: Any = None,
    n_workers: int = 2,
    worker_cores: int | None = 1,
    worker_memory: Any = None,
    adapt: tuple[int, int] | Mapping[str, int] | None = None,
    shutdown_on_close: bool = True,
    timeout: float | None = 300.0,
    cluster_options: Mapping[str, Any] | None = None,
) -> Iterator:
    """Start a cluster on a dask-gateway server and yield a ``distributed.Client`` to it.

    Parameters
    ----------
    address : str or None
        HTTP(S) address of the gateway (``http://host:8000``). None: the dask config
        ``gateway.address``.
    proxy_address : str or int, optional
        Scheduler proxy (``gateway://host:port`` or a port); default: the gateway's own
        (dask config ``gateway.proxy-address``, else ``address``).
    auth : dask_gateway.auth.GatewayAuth or str, optional
        ``BasicAuth(user, password)``, ``"kerberos"``, ``"jupyterhub"``, ``"basic"``; default:
        dask config ``gateway.auth``.
    n_workers : int
        Workers to scale to (ignored when ``adapt`` is given).
    worker_cores : int or None
        Cores (= threads) per worker, set as the ``worker_cores`` cluster option when the server
        exposes it. None: the server's default.
    worker_memory : optional
        Memory per worker, set as the ``worker_memory`` cluster option when the server exposes it;
        its type is defined by the server (commonly a float in GiB).
    adapt : (int, int) or dict, optional
        ``(minimum, maximum)`` workers (or ``{"minimum": .., "maximum": ..}``): adaptive scaling
        done by the gateway instead of a fixed ``n_workers``.
    shutdown_on_close : bool
        Stop the cluster when the block exits. With False the cluster keeps running (its name is
        ``client.cluster.name``; reconnect with ``Gateway.connect(name)``).
    timeout : float or None
        Seconds to wait for the first workers (``n_workers``, or the adaptive minimum) before
        giving up; None: do not wait.
    cluster_options : dict, optional
        Other server-defined cluster options (e.g. ``{"image": ...}``), applied before
        ``worker_cores``/``worker_memory``.

    Yields
    ------
    distributed.Client
        Connected to the new cluster (not set as the session default).

    Raises
    ------
    ImportError
        ``dask-gateway`` is not installed (names the ``gateway`` extra).
    ValueError
        Bad ``n_workers``/``adapt``, or an option the server rejects.
    TimeoutError
        The workers did not arrive within ``timeout`` (the cluster is stopped first).

    Notes
    -----
    Workers run the same code as the client: their environment must have ``alerce`` installed
    and reach the store (a SQLite file must be on a filesystem shared with every worker; use
    PostgreSQL for real clusters).
    """
    bounds = _adapt_bounds(adapt)
    if bounds is None and (isinstance(n_workers, bool) or int(n_workers) != n_workers
                           or n_workers < 0):
        raise ValueError(f"n_workers must be a non-negative integer, got {n_workers!r}")
    dg = _import_gateway()

    gw = dg.Gateway(address, proxy_address=proxy_address, auth=auth)
    try:
        options = gw.cluster_options()
        for key, value in (cluster_options or {}).items():
            if key not in set(options):
                raise ValueError(f"the dask-gateway server at {gw.address} has no cluster option "
                                 f"{key!r} (it exposes {sorted(options)})")
            options[key] = value
        options = _merge_worker_options(options, worker_cores, worker_memory)
        address, proxy, auth_obj = gw.address, gw.proxy_address, gw.auth
    finally:
        close_gateway(gw)

    cluster = dg.GatewayCluster(address=address, proxy_address=proxy, auth=auth_obj,
                                cluster_options=options, shutdown_on_close=shutdown_on_close)
    client = None
    try:
        if bounds is not None:
            cluster.adapt(minimum=bounds[0], maximum=bounds[1])
            wait_for = bounds[0]
        else:
            cluster.scale(int(n_workers))
            wait_for = int(n_workers)
        client = cluster.get_client(set_as_default=False)
        logger.info("dask-gateway cluster %s: %s", cluster.name, cluster.dashboard_link)
        if timeout is not None and wait_for > 0:
            try:
                client.wait_for_workers(wait_for, timeout=timeout)
            except TimeoutError as exc:
                raise TimeoutError(
                    f"dask-gateway cluster {cluster.name} at {address}: {wait_for} worker(s) did not "
                    f"start within {timeout} s (check the server log: worker_cmd, PATH, memory)"
                ) from exc
        yield client
    finally:
        if client is not None:
            client.close()
        cluster.close()
        close_gateway(cluster.gateway)
        if not shutdown_on_close:
            logger.info("dask-gateway cluster %s left running", cluster.name)


def close_gateway(gateway) -> None:
    """Close a ``dask_gateway.Gateway`` once and make later ``close()`` calls no-ops.

    With dask-gateway 2026.3 and current ``distributed``, ``Gateway.__del__`` calls ``close()``
    again after the loop runner is stopped, which raises "Accessing the loop property while the
    loop is not running" as an unraisable exception at garbage collection.
    """
    if getattr(gateway, "_alerce_closed", False):
        return
    try:
        gateway.close()
    except RuntimeError as exc:  # already closed, e.g. by GatewayCluster.close()
        if "loop is not running" not in str(exc):
            raise
    gateway._alerce_closed = True
    gateway.close = lambda *args, **kwargs: None


def _merge_worker_options(options, worker_cores, worker_memory):
    fields = set(options)
    for name, value in (("worker_cores", worker_cores), ("worker_memory", worker_memory)):
        if value is None:
            continue
        if name in fields:
            try:
                options[name] = value
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cluster option {name}={value!r} rejected: {exc}") from exc
        elif not (name == "worker_cores" and value == 1):
            warnings.warn(
                f"the dask-gateway server does not expose the cluster option {name!r} (it exposes "
                f"{sorted(fields)}); the server's ClusterConfig.{name} applies, not {value!r}",
                RuntimeWarning,
                stacklevel=4,
            )
    return options


# --- command line -------------------------------------------------------------------------------


def check_scheduler_address(address: str | None) -> str | None:
    """Return ``address`` unchanged, or raise a ValueError explaining how to use a gateway.

    A ``gateway://`` address is the gateway's scheduler *proxy*: connecting to it needs a cluster
    name and per-cluster TLS credentials, so it cannot be used as ``--scheduler``.
    """
    if address and address.strip().lower().startswith("gateway://"):
        raise ValueError(
            f"{address!r} is a dask-gateway proxy address, not a scheduler address: use "
            "--gateway http(s)://HOST:PORT [--gateway-proxy gateway://HOST:PORT] on the command "
            "line, or alerce.streams.gateway.gateway_client(...) and pass client= in Python"
        )
    return address


def _adapt_arg(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX workers, got {text!r}") from None
    try:
        return _adapt_bounds((lo, hi))  # type: ignore[return-value]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _memory_arg(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--gateway`` and its companions to an ``alerce`` sub-command parser.

    Authentication comes from the dask config (``~/.config/dask/gateway.yaml`` or
    ``DASK_GATEWAY__AUTH__TYPE=basic``, ``DASK_GATEWAY__AUTH__KWARGS__USERNAME=..``,
    ``DASK_GATEWAY__AUTH__KWARGS__PASSWORD=..``) unless ``--gateway-auth`` names a type.
    """
    g = parser.add_argument_group("dask-gateway")
    g.add_argument("--gateway", metavar="URL",
                   help="start the Dask cluster on this dask-gateway server (http(s)://host:port)")
    g.add_argument("--gateway-proxy", metavar="ADDRESS",
                   help="scheduler proxy address (gateway://host:port); default: the server's")
    g.add_argument("--gateway-auth", metavar="TYPE",
                   help="basic, kerberos, jupyterhub or a class path; default: dask config")
    g.add_argument("--gateway-workers", type=int, default=2, metavar="N",
                   help="number of workers (default 2)")
    g.add_argument("--gateway-cores", type=int, default=1, metavar="N",
                   help="cores per worker, if the server exposes worker_cores (default 1)")
    g.add_argument("--gateway-memory", type=_memory_arg, default=None, metavar="MEM",
                   help="memory per worker, if the server exposes worker_memory (e.g. 4 for GiB)")
    g.add_argument("--gateway-adapt", type=_adapt_arg, default=None, metavar="MIN:MAX",
                   help="adaptive scaling between MIN and MAX workers instead of --gateway-workers")
    g.add_argument("--gateway-keep", action="store_true",
                   help="leave the gateway cluster running at exit")


@contextlib.contextmanager
def client_from_args(args: argparse.Namespace) -> Iterator:
    """Yield a gateway client if ``args.gateway`` is set, else None (the caller's default applies).

    Also validates ``args.scheduler`` (when present) with :func:`check_scheduler_address` and
    refuses ``--gateway`` together with ``--scheduler``.
    """
    scheduler = check_scheduler_address(getattr(args, "scheduler", None))
    url = getattr(args, "gateway", None)
    if not url:
        yield None
        return
    if scheduler:
        raise ValueError("give either --scheduler or --gateway, not both")
    with gateway_client(
        url,
        proxy_address=getattr(args, "gateway_proxy", None),
        auth=getattr(args, "gateway_auth", None),
        n_workers=getattr(args, "gateway_workers", 2),
        worker_cores=getattr(args, "gateway_cores", 1),
        worker_memory=getattr(args, "gateway_memory", None),
        adapt=getattr(args, "gateway_adapt", None),
        shutdown_on_close=not getattr(args, "gateway_keep", False),
    ) as client:
        yield client
