"""Autogenerate an Alembic migration from the models: ``python tools/makemigration.py "message" REV``.

It builds a scratch SQLite database at the current head, compares it with every package's models and
writes ``monitor/migrations/versions/<REV>_<slug>.py``. Review the result before committing it.
"""

import asyncio
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from alembic import command  # noqa: E402
from all_models import load_all  # noqa: E402

from monitor.db.engine import alembic_config, make_engine, upgrade  # noqa: E402


async def main(message: str, rev: str) -> None:
    metadata = load_all()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        engine = make_engine(url)
        await upgrade(engine)

        def gen(conn):
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            cfg.attributes["target_metadata"] = metadata
            slug = re.sub(r"\W+", "_", message.lower()).strip("_")[:40]
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev)
            for f in (Path(cfg.get_main_option("script_location")) / "versions").glob(f"{rev}_*.py"):
                f.rename(f.with_name(f"{rev}_{slug}.py"))

        async with engine.begin() as conn:
            await conn.run_sync(gen)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
