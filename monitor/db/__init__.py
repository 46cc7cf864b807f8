"""The database seam: one declarative ``Base`` for every package, column types that behave the same on
SQLite and PostgreSQL, the engine and session factory, and Alembic migrations."""

from monitor.db.base import Base, BigId, Money, UTCDateTime, fk_id
from monitor.db.engine import make_engine, make_sessionmaker, upgrade

__all__ = ["Base", "BigId", "Money", "UTCDateTime", "fk_id", "make_engine", "make_sessionmaker", "upgrade"]
