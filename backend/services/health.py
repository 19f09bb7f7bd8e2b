"""Is the portal able to serve? (GET /healthz)"""

from __future__ import annotations

import logging

from backend.tables import Company

logger = logging.getLogger("portal.health")


async def database_ok() -> bool:
    """Whether the database answers. Why it does not goes to the log, never to the public
    (an error text names hosts, ports, users and drivers)."""
    try:
        await Company._meta.db.run_ddl("SELECT 1")
    except Exception:
        logger.exception("health check: the database does not answer")
        return False
    return True
