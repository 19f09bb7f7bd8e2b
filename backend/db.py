"""The database engine from DATABASE_URL: an SQLite file by default, PostgreSQL in production."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine


def sqlite_path(url: str) -> Path:
    """`sqlite:///var/x.sqlite` is relative to the working directory, `sqlite:////abs` absolute."""
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else Path.cwd() / path


def create_engine(url: str) -> Engine:
    scheme = urlsplit(url).scheme
    if scheme in {"postgresql", "postgres"}:
        return PostgresEngine(config={"dsn": url})
    if scheme == "sqlite" and url.startswith("sqlite:///"):
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A busy timeout lets concurrent writers wait instead of failing with "database is locked".
        return SQLiteEngine(path=str(path), timeout=30)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")


def is_unique_violation(error: BaseException) -> bool:
    """Both engines' "unique constraint failed", recognised in one place."""
    if isinstance(error, sqlite3.IntegrityError):
        return getattr(error, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_UNIQUE"
    return isinstance(error, asyncpg.exceptions.UniqueViolationError)
