"""Is the portal able to serve? (GET /healthz)"""

from __future__ import annotations

from backend.tables import Company


async def database_problem() -> str | None:
    """None when the database answers, else a short reason."""
    try:
        await Company._meta.db.run_ddl("SELECT 1")
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:200]
    return None
