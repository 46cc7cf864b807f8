"""Shared fixtures.

Database tests run twice, on SQLite (the embedded default) and on PostgreSQL (the production store). Each
pytest run migrates one scratch PostgreSQL database of its own (so parallel runs never collide) and one
template SQLite file; every test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from all_models import load_all  # noqa: E402

from monitor.clock import ManualClock  # noqa: E402
from monitor.db import make_engine, make_sessionmaker, upgrade  # noqa: E402

load_all()

PG_ADMIN_URL = os.environ.get("PG_TEST_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _run(coro_fn) -> None:
    """Run a coroutine to completion in a thread of its own (fixtures may be set up inside a running loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(coro_fn())).result()


@dataclass
class Db:
    kind: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker


async def _pg_admin(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url():
    """A migrated PostgreSQL database for this pytest run, dropped at the end."""
    name = f"ngb_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _run(lambda: _pg_admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    async def migrate():
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()

    _run(migrate)
    yield url
    _run(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def migrate():
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    _run(migrate)
    return path


async def _truncate_pg(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        names = (await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
        ))).scalars().all()
        if names:
            await conn.execute(text(
                "TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path) -> Db:
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "negahban.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
        engine = make_engine(url)
    else:
        url = request.getfixturevalue("pg_url")
        engine = make_engine(url, pool_size=5)
        await _truncate_pg(engine)
    yield Db(request.param, url, engine, make_sessionmaker(engine))
    await engine.dispose()


@pytest.fixture
async def pg_db(pg_url) -> Db:
    """An empty, migrated PostgreSQL database, for what only the production store can show (concurrent
    sessions racing for one row)."""
    engine = make_engine(pg_url, pool_size=10)
    await _truncate_pg(engine)
    yield Db("postgresql", pg_url, engine, make_sessionmaker(engine))
    await engine.dispose()


@pytest.fixture
def sessionmaker(db: Db) -> async_sessionmaker:
    return db.sessionmaker


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def chromium_path() -> str:
    """Debian's chromium, for the Playwright tests (installed by make system-deps; missing is a failure)."""
    from dashboards.pdf import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: apt-get install chromium")
    return CHROMIUM
