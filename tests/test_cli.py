"""The ``alerce`` command line, run as a user would (subprocesses)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
from conftest import ROOT

from alerce.store import Store


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alerce.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("replay", "stream", "reconcile", "simulate", "demo", "db", "train", "evaluate",
                "export", "catalog", "xmatch"):
        assert cmd in out.stdout


def test_simulate_replay_export_roundtrip(tmp_path):
    night = tmp_path / "night"
    sim = run("simulate", "--out", str(night), "--n-objects", "40", "--seed", "3")
    assert sim.returncode == 0, sim.stderr[-2000:]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    rep = run("replay", str(night), "--store", url, "--batch-size", "50", "--no-features",
              "--no-progress")
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert "alerts stored" in rep.stdout and "alerts/s" in rep.stdout
    n_files = len(list(night.rglob("*.avro")))
    stored = int(next(line for line in rep.stdout.splitlines()
                      if line.startswith("alerts stored")).split()[-1].replace(",", ""))
    assert stored == n_files
    with Store(url) as st:
        n_objects = st.count("object")
    out = tmp_path / "objects.parquet"
    exp = run("export", "--store", url, "--table", "object", "--out", str(out))
    assert exp.returncode == 0, exp.stderr[-2000:]
    assert len(pd.read_parquet(out)) == n_objects > 0


def test_db_upgrade_on_current_store(tmp_path):
    from alerce.store import SCHEMA_VERSION

    url = f"sqlite:///{tmp_path / 'up.db'}"
    Store(url).close()
    out = run("db", "upgrade", "--store", url)
    assert out.returncode == 0 and f"schema version {SCHEMA_VERSION}, up to date" in out.stdout


def test_db_upgrade_reports_the_versions(tmp_path):
    import sqlalchemy as sa

    from alerce.store import SCHEMA_VERSION
    from alerce.store.schema import build_metadata

    path = tmp_path / "v1.db"  # what version 1 created: every table with a rowid
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        build_metadata(sqlite_without_rowid=False).create_all(conn)
        conn.exec_driver_sql("INSERT INTO schema_version (version, description) VALUES (1, 'v1')")
    engine.dispose()
    out = run("db", "upgrade", "--store", f"sqlite:///{path}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"schema version 1 -> {SCHEMA_VERSION}" in out.stdout


def test_replay_of_missing_path_fails_clearly(tmp_path):
    out = run("replay", str(tmp_path / "nope"), "--store", f"sqlite:///{tmp_path / 'x.db'}",
              "--no-progress")
    assert out.returncode != 0
    assert "no alert files found" in out.stderr
