"""Shared pytest fixtures: where the real data lives, and temporary stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Real public survey data shipped beside the project (never copied into the repo).
SHARED_DATA = Path(os.environ.get("ALERCE_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()


def shared(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a clear reason if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set ALERCE_SHARED_DATA or clone beside shared/)")
    return path


@pytest.fixture
def shared_data():
    """The ``shared`` helper as a fixture: ``shared_data("ztf", "alerts")``."""
    return shared


@pytest.fixture(scope="session")
def dask_client():
    """A real two-worker LocalCluster (processes) shared by the tests that need Dask."""
    from distributed import Client

    from alerce.streams.cluster import local_cluster

    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


# The throw-away PostgreSQL server fixtures (skip when the server binaries are absent).
from pg import pg_server, pg_url  # noqa: E402,F401
