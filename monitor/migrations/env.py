"""Alembic environment. Migrations are plain operations and import no models, so that every package can
add its own tables without the migration environment importing across the layers."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.types import TypeDecorator

from monitor.db.engine import make_engine

config = context.config


def _render_item(type_, obj, autogen_context):
    # Migrations name only SQLAlchemy types: a TypeDecorator is rendered as what it stores.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=config.attributes.get("target_metadata"),
                      render_as_batch=True, render_item=_render_item,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_online())
