"""The migrations build exactly the schema the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitor.db import Base


async def test_migrations_match_the_models(db):
    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return compare_metadata(ctx, Base.metadata)

    async with db.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


async def test_upgrade_is_idempotent(db):
    from monitor.db import upgrade

    await upgrade(db.engine)
    await upgrade(db.engine)
