"""dask-gateway support, against a real ``dask-gateway-server`` started on loopback ports.

The module fixture writes a ``dask_gateway_config.py`` (UnsafeLocalBackend: schedulers and workers
are local processes of this user, run from the venv's ``bin``; SimpleAuthenticator: one shared
password; cluster options ``worker_cores`` and ``worker_memory``), starts ``dask-gateway-server -f
CONFIG`` and waits for its health endpoint through the proxy. It skips with the reason and the end
of the server log when the server cannot start, and stops the server at teardown.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared

from alerce.store import Store
from alerce.streams import gateway as gw_mod
from alerce.streams.gateway import (
    add_gateway_arguments,
    check_scheduler_address,
    client_from_args,
    close_gateway,
    gateway_client,
)
from alerce.streams.replay import replay

SERIES = ("ztf", "alerts", "series_ZTF19aazzpje")
KEYS = {"detection": ["oid", "candid"], "object": ["oid"]}
PASSWORD = "alerce-test-password"
GiB = 2**30

CONFIG = """\
# dask-gateway-server configuration used by tests/test_gateway.py (also shown in docs/dask.md)
from dask_gateway_server.options import Float, Integer, Options

c.DaskGateway.address = "127.0.0.1:{api_port}"          # private API server
c.Proxy.address = "127.0.0.1:{proxy_port}"              # HTTP + gateway:// scheduler proxy
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = "{password}"
c.ClusterConfig.scheduler_cmd = ["dask", "scheduler"]    # 'dask-scheduler' no longer exists
c.ClusterConfig.worker_cmd = ["dask", "worker"]
c.ClusterConfig.scheduler_memory = "1 G"
c.LocalBackend.clusters_directory = "{clusters_dir}"
c.LocalBackend.cluster_start_timeout = 180               # the test machine is heavily loaded
c.LocalBackend.worker_start_timeout = 180
c.LocalBackend.cluster_status_period = 5
c.LocalBackend.worker_status_period = 5
c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=2, label="Cores per worker"),
    Float("worker_memory", default=1.0, min=0.5, max=4.0, label="Memory per worker (GiB)"),
    handler=lambda o: {{"worker_cores": o.worker_cores,
                       "worker_memory": int(o.worker_memory * 2**30)}},
)
"""


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _log_tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the server stops its clusters), then SIGKILL its whole process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the session started below, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def gateway_server(tmp_path_factory):
    """``(http_address, proxy_address)`` of a running local dask-gateway server."""
    pytest.importorskip("dask_gateway", reason="dask-gateway (the 'gateway' extra) is not installed")
    pytest.importorskip("dask_gateway_server",
                        reason="dask-gateway-server is not installed (pip install "
                               "'dask-gateway-server[local]' sqlalchemy)")
    pytest.importorskip("sqlalchemy", reason="dask-gateway-server needs sqlalchemy")
    bindir = Path(sys.executable).parent
    exe = bindir / "dask-gateway-server"
    if not exe.exists():
        pytest.skip(f"dask-gateway-server executable not found in {bindir}")
    if not (bindir / "dask").exists():
        pytest.skip(f"the 'dask' command (scheduler_cmd/worker_cmd) is not in {bindir}")

    root = tmp_path_factory.mktemp("gateway")
    api_port, proxy_port = _free_ports(2)
    config = root / "dask_gateway_config.py"
    config.write_text(CONFIG.format(api_port=api_port, proxy_port=proxy_port, password=PASSWORD,
                                    clusters_dir=root / "clusters"))
    log = root / "server.log"
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-f", str(config)], cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{proxy_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.skip(f"dask-gateway-server exited with code {proc.returncode} at start:\n"
                            f"{_log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{address}/api/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.skip(f"dask-gateway-server did not answer on {address} within 120 s:\n"
                            f"{_log_tail(log)}")
            time.sleep(0.5)
        yield address, f"gateway://127.0.0.1:{proxy_port}"
    finally:
        _stop(proc)


def _auth():
    from dask_gateway import BasicAuth

    return BasicAuth("alerce", PASSWORD)


def _tables(url: str) -> dict[str, pd.DataFrame]:
    with Store(url) as store:
        return {name: store.read_table(name).sort_values(key).reset_index(drop=True)
                for name, key in KEYS.items()}


def _gone(pid: int) -> bool:
    """Whether a local process has exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_stopped(gateway, name: str, pids: list[int], timeout: float = 120) -> None:
    """Poll until the gateway reports the cluster stopped and its processes have exited."""
    from dask_gateway.client import ClusterStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = gateway.get_cluster(name).status
        if status == ClusterStatus.STOPPED and all(map(_gone, pids)):
            return
        time.sleep(1)
    report = gateway.get_cluster(name)
    raise AssertionError(f"cluster {name} not stopped: status {report.status}, "
                         f"alive pids {[p for p in pids if not _gone(p)]}")


# --- against the real server ---------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_replay_through_gateway_matches_local_cluster(gateway_server, tmp_path, dask_client):
    from dask_gateway import Gateway

    files = sorted(str(p) for p in shared(*SERIES).glob("*.avro"))
    assert len(files) == 14
    address, proxy = gateway_server

    via_gateway = f"sqlite:///{tmp_path / 'gateway.db'}"
    with gateway_client(address, proxy_address=proxy, auth=_auth(), n_workers=2, worker_cores=1,
                        worker_memory=1.0, timeout=240) as client:
        name = client.cluster.name
        assert client.scheduler.address.startswith(f"{proxy}/")
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2
        assert {w["nthreads"] for w in workers.values()} == {1}
        assert {w["memory_limit"] for w in workers.values()} == {1 * GiB}
        pids = list(client.run(os.getpid).values())
        # the workers are separate processes that import this very package
        assert os.getpid() not in pids
        import alerce

        assert set(client.run(lambda: __import__("alerce").__file__).values()) == {alerce.__file__}
        s = replay(files, store=via_gateway, client=client, batch_size=5, features=False)
        assert s.alerts == 14 and s.bad_alerts == 0 and not s.errors, s.errors[:1]
        assert s.failed_batches == 0

    via_local = f"sqlite:///{tmp_path / 'local.db'}"
    s = replay(files, store=via_local, client=dask_client, batch_size=5, features=False)
    assert s.alerts == 14 and not s.errors, s.errors[:1]

    a, b = _tables(via_gateway), _tables(via_local)
    for table in KEYS:
        assert len(a[table]) > 0, table
        pd.testing.assert_frame_equal(a[table], b[table], check_dtype=False, obj=table)
    assert len(a["detection"]) > 14  # the alerts' histories were merged, not just 14 rows
    assert a["object"]["oid"].tolist() == ["ZTF19aazzpje"]

    # leaving the block stopped the cluster: the gateway says so and its processes are gone
    gateway = Gateway(address, proxy_address=proxy, auth=_auth())
    try:
        assert name not in {c.name for c in gateway.list_clusters()}
        _wait_stopped(gateway, name, pids)
    finally:
        close_gateway(gateway)


@pytest.mark.timeout(400)
def test_command_line_options_reach_the_cluster(gateway_server):
    import dask
    from dask_gateway import BasicAuth, Gateway

    address, proxy = gateway_server
    parser = argparse.ArgumentParser()
    parser.add_argument("--scheduler")
    add_gateway_arguments(parser)
    args = parser.parse_args(["--gateway", address, "--gateway-proxy", proxy, "--gateway-auth",
                              "basic", "--gateway-workers", "1", "--gateway-cores", "2",
                              "--gateway-memory", "1.5"])
    # basic-auth credentials come from the dask config, as for a command-line user
    with dask.config.set({"gateway.auth.kwargs": {"username": "cli", "password": PASSWORD}}):
        with client_from_args(args) as client:
            name = client.cluster.name
            workers = client.scheduler_info(n_workers=-1)["workers"]
            assert [w["nthreads"] for w in workers.values()] == [2]
            assert [w["memory_limit"] for w in workers.values()] == [int(1.5 * GiB)]
            pids = list(client.run(os.getpid).values())
    # clusters belong to the user that started them
    gateway = Gateway(address, proxy_address=proxy, auth=BasicAuth("cli", PASSWORD))
    try:
        _wait_stopped(gateway, name, pids)
    finally:
        close_gateway(gateway)


@pytest.mark.timeout(400)
def test_adaptive_cluster_left_running_can_be_reattached(gateway_server):
    from dask_gateway import Gateway

    address, proxy = gateway_server
    with gateway_client(address, proxy_address=proxy, auth=_auth(), adapt=(1, 2),
                        shutdown_on_close=False, timeout=240) as client:
        name = client.cluster.name
        assert len(client.scheduler_info(n_workers=-1)["workers"]) >= 1
        assert client.submit(sum, [1, 2, 3]).result(timeout=120) == 6
    gateway = Gateway(address, proxy_address=proxy, auth=_auth())
    try:
        assert name in {c.name for c in gateway.list_clusters()}  # still running
        cluster = gateway.connect(name)
        try:
            with cluster.get_client(set_as_default=False) as again:
                assert again.submit(pow, 2, 10).result(timeout=120) == 1024
                pids = list(again.run(os.getpid).values())
        finally:
            cluster.close()
            close_gateway(cluster.gateway)
        gateway.stop_cluster(name)
        _wait_stopped(gateway, name, pids)
    finally:
        close_gateway(gateway)


@pytest.mark.timeout(120)
def test_unknown_cluster_option_is_refused_before_starting(gateway_server):
    address, proxy = gateway_server
    with pytest.raises(ValueError, match="no cluster option 'image'"):
        with gateway_client(address, proxy_address=proxy, auth=_auth(),
                            cluster_options={"image": "x"}):
            pass
    with pytest.raises(ValueError, match="worker_cores"):
        with gateway_client(address, proxy_address=proxy, auth=_auth(), worker_cores=64):
            pass


@pytest.mark.timeout(120)
def test_wrong_password_is_an_error(gateway_server):
    from dask_gateway import BasicAuth

    address, proxy = gateway_server
    with pytest.raises(Exception, match="(?i)unauthorized|401|403|auth"):
        with gateway_client(address, proxy_address=proxy, auth=BasicAuth("x", "wrong")):
            pass


# --- without a server -----------------------------------------------------------------------------


def test_gateway_scheduler_address_is_refused_with_the_way_to_do_it():
    assert check_scheduler_address("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    assert check_scheduler_address(None) is None
    with pytest.raises(ValueError, match="--gateway http"):
        check_scheduler_address("gateway://gw.example.org:8000/abc")
    args = argparse.Namespace(scheduler="gateway://h:1", gateway=None)
    with pytest.raises(ValueError, match="client="):
        with client_from_args(args):
            pass
    args = argparse.Namespace(scheduler="tcp://h:1", gateway="http://h:2")
    with pytest.raises(ValueError, match="not both"):
        with client_from_args(args):
            pass
    with client_from_args(argparse.Namespace(scheduler=None, gateway=None)) as client:
        assert client is None


def test_adapt_and_worker_arguments_are_validated():
    for bad in [(3, 1), (-1, 2), (0, 0), (1,), "1:2", {"minimum": 1}, {"min": 1, "maximum": 2},
                (1.5, 2), (True, 2)]:
        with pytest.raises(ValueError):
            with gateway_client("http://127.0.0.1:9", adapt=bad):
                pass
    for bad in [-1, 1.5, True]:
        with pytest.raises(ValueError, match="n_workers"):
            with gateway_client("http://127.0.0.1:9", n_workers=bad):
                pass
    parser = argparse.ArgumentParser()
    add_gateway_arguments(parser)
    args = parser.parse_args(["--gateway", "http://h:1", "--gateway-adapt", "0:4",
                              "--gateway-memory", "2G"])
    assert args.gateway_adapt == (0, 4) and args.gateway_memory == "2G"
    assert args.gateway_workers == 2 and args.gateway_cores == 1 and not args.gateway_keep
    with pytest.raises(SystemExit):
        parser.parse_args(["--gateway-adapt", "4:1"])


def test_missing_dask_gateway_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_gateway", None)
    with pytest.raises(ImportError, match=r"alerce-broker\[gateway\]"):
        with gw_mod.gateway_client("http://127.0.0.1:9"):
            pass


def test_worker_options_the_server_does_not_expose_warn_instead_of_vanishing():
    from dask_gateway.options import Float, Integer, Options

    with pytest.warns(RuntimeWarning, match="does not expose the cluster option 'worker_memory'"):
        out = gw_mod._merge_worker_options(Options(), 1, 2.0)
    assert list(out) == []
    with pytest.warns(RuntimeWarning, match="'worker_cores'"):
        gw_mod._merge_worker_options(Options(), 4, None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults are silent on a server without options
        gw_mod._merge_worker_options(Options(), 1, None)
    opts = Options(Integer("worker_cores", 1, min=1, max=4), Float("worker_memory", 1.0, max=8))
    out = gw_mod._merge_worker_options(opts, 3, 2.5)
    assert dict(out) == {"worker_cores": 3, "worker_memory": 2.5}
    with pytest.raises(ValueError, match="worker_memory=16"):
        gw_mod._merge_worker_options(opts, 1, 16)
