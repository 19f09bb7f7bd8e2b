from piccolo.columns import BigInt, ForeignKey, Text, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.tables.users import User


class BrowserSession(Table, tablename="browser_session"):
    """A browser's session (see web/sessions.py): the id its cookie carries, whose it is and
    what it holds. In the database rather than in Redis, so a signed-in request reads its
    session and its user in one statement, and every instance sees the same sessions."""

    id = Varchar(length=64, primary_key=True)  # random: 32 bytes as hex
    user_id = ForeignKey(references=User, null=True, index=True, on_delete=OnDelete.cascade)
    data = Text()  # the session as Litestar serialises it (JSON)
    expires_at = BigInt(index=True)  # seconds since the epoch
