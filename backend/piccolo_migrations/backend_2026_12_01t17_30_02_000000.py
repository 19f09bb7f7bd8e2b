from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T17:30:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "ticket last_activity_at for the tickets there are, and the history's index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    engine = engine_finder()

    async def backfill() -> None:
        # A migration of its own: Piccolo runs a migration's add_raw before its add_column.
        # What the customer can see happen (backend/services/activity.py): the opening, the
        # latest message that is not an internal note, the latest time entry logged or
        # voided. Status changes were not recorded before, so they cannot count here.
        # PostgreSQL's GREATEST and SQLite's scalar max are the same here: no argument is NULL.
        greatest = "GREATEST" if engine.engine_type == "postgres" else "max"
        await engine.run_ddl(
            f"UPDATE ticket SET last_activity_at = {greatest}(ticket.created_at,"
            " coalesce((SELECT max(m.created_at) FROM ticket_message AS m"
            " WHERE m.ticket = ticket.id AND NOT m.internal), ticket.created_at),"
            " coalesce((SELECT max(te.created_at) FROM time_entry AS te"
            " WHERE te.ticket = ticket.id), ticket.created_at),"
            " coalesce((SELECT max(te.voided_at) FROM time_entry AS te"
            " WHERE te.ticket = ticket.id), ticket.created_at))"
        )

    async def create_index() -> None:
        # The history's keyset: a company's tickets by last activity, then id.
        await engine.run_ddl(
            "CREATE INDEX ticket_company_activity ON ticket (company, last_activity_at, id)"
        )

    async def drop_index() -> None:
        await engine.run_ddl("DROP INDEX ticket_company_activity")

    manager.add_raw(backfill)
    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
