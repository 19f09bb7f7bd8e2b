from piccolo.columns import BigInt, Integer, Varchar
from piccolo.table import Table


class SignInCounter(Table, tablename="sign_in_counter"):
    """Sign-in attempts per e-mail and per client address in the current window.

    Counted with one atomic upsert each (see users.LoginThrottle): the database is the one
    store every process of the portal shares in every configuration."""

    # "email:<sha256>" or "ip:<address or IPv6 /64>". The primary key, so an upsert that
    # conflicts burns no sequence number.
    subject = Varchar(length=100, primary_key=True)
    attempts = Integer(default=0)
    # Milliseconds since the epoch: compared with a number passed in, the same on both engines.
    window_ends_ms = BigInt(index=True)
