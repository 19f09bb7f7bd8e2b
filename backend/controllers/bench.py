"""The benchmark's floor: what one request costs on this stack with nothing of ours in the way.

Mounted only when PORTAL_BENCH=1 (`make bench`), never otherwise. One query of 12 rows and an
escaped template, outside the session, CSRF and authentication middleware: every page's
throughput in `make bench` is reported as a share of this one's.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from backend.tables import Ticket

FLOOR_ROWS = 12


class BenchController(Controller):
    path = "/bench"

    @get("/floor", name="bench_floor", exclude_from_auth=True)
    async def floor(self) -> Template:
        rows = await Ticket.select(Ticket.id, Ticket.subject).order_by(Ticket.id).limit(FLOOR_ROWS)
        return Template("bench/floor.html", context={"rows": rows})
