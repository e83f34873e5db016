"""Fixtures of the central side: one throwaway PostgreSQL cluster per test session, a fresh database per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg import PgCluster


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster):
    """An empty database of its own."""
    from hallq.central import db

    db.forget_partitions()
    return pg_cluster.create_database()


@pytest.fixture
def central_dsn(pg_dsn):
    """A database with the central schema (every migration applied)."""
    from hallq.central import db

    with db.connect(pg_dsn) as conn:
        db.migrate(conn)
    return pg_dsn
