"""PostgreSQL claim stores: a row lock (``SELECT ... FOR UPDATE``) and a version column.

One row per target in ``<schema>.claim_counter (target, capacity, used, version)`` and one row
per granted unit in ``<schema>.claim_holder (claim_id, target)``; a CHECK keeps ``used``
between 0 and the capacity, so even a wrong decision could not be committed. The operations are
the core's (:class:`twin.core.locking.Op`), one SQL statement each:

pessimistic  LOCK    ``BEGIN; SELECT used, capacity ... FOR UPDATE`` (waits for the row)
             COMMIT  ``UPDATE used + 1; INSERT holder; COMMIT`` (three round trips, locked)
             ABORT   ``ROLLBACK``
             release ``UPDATE used - 1 (with the holder's DELETE)`` then ``COMMIT``
optimistic   READ    ``SELECT used, capacity, version`` (autocommit, no lock)
             CAS     ``UPDATE used + 1, version + 1 WHERE version = seen`` with the holder's
                     INSERT in the same statement (autocommit): one row changed = matched
             release the same single-statement ``used - 1`` in autocommit; the version is
                     left alone (see the core: a release never invalidates a reader)

A client that dies inside a pessimistic transaction loses nothing: its connection closes, the
server rolls the transaction back and hands the row lock to the next waiter.

The schema is created by :data:`MIGRATIONS`, applied in order under an advisory lock and
recorded in ``<schema>.schema_migrations``, so any number of processes may call ``setup`` at
once and a later version only adds steps.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping

from twin.core.locking import Kind, Op, Outcome, RemoteClaim

from .base import StoreUnavailable, pg_dsn

try:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - the `stores` extra is not installed
    psycopg = None  # type: ignore[assignment]

__all__ = ["MIGRATIONS", "PostgresClaimStore", "pg_available"]

#: Schema migrations, applied once each in this order ({s} is the schema).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {s}.claim_counter (
        target   text PRIMARY KEY,
        capacity integer NOT NULL CHECK (capacity >= 0),
        used     integer NOT NULL DEFAULT 0,
        version  bigint  NOT NULL DEFAULT 0,
        CONSTRAINT used_within_capacity CHECK (used >= 0 AND used <= capacity)
    );
    CREATE TABLE {s}.claim_holder (
        claim_id text PRIMARY KEY,
        target   text NOT NULL REFERENCES {s}.claim_counter (target)
    );
    """,
)

_LOCK = "SELECT used, capacity FROM {s}.claim_counter WHERE target = %s FOR UPDATE"
_GRANT = "UPDATE {s}.claim_counter SET used = used + 1 WHERE target = %s"
_HOLD = "INSERT INTO {s}.claim_holder (claim_id, target) VALUES (%s, %s)"
_READ = "SELECT used, capacity, version FROM {s}.claim_counter WHERE target = %s"
_CAS = """
    WITH won AS (
        UPDATE {s}.claim_counter SET used = used + 1, version = version + 1
        WHERE target = %s AND version = %s RETURNING target
    )
    INSERT INTO {s}.claim_holder (claim_id, target) SELECT %s, target FROM won
"""
# A release: the holder's row goes and the count drops in one statement (the UPDATE takes the
# row lock, so under `pessimistic` it waits behind a claim holding it, as in the core).
_RELEASE = """
    WITH gone AS (DELETE FROM {s}.claim_holder WHERE claim_id = %s RETURNING target)
    UPDATE {s}.claim_counter c SET used = c.used - 1 FROM gone WHERE c.target = gone.target
    RETURNING c.used, c.capacity
"""


def pg_available(dsn: str | None = None) -> str | None:
    """None when a PostgreSQL server answers at ``dsn``; otherwise why not, in one line."""
    if psycopg is None:
        return "psycopg is not installed (pip install 'parktwin[stores]')"
    try:
        with psycopg.connect(pg_dsn(dsn), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL at {pg_dsn(dsn)}: {first}"
    return None


class PostgresClaimStore:
    """The ``pessimistic`` or ``optimistic`` strategy's row, on a real PostgreSQL server.

    ``pool_size`` connections are opened lazily (psycopg_pool); a pessimistic claim holds one
    from its LOCK to its COMMIT or ABORT, an optimistic one only for each statement, which is
    the difference the study's latency model draws too.
    """

    def __init__(
        self,
        strategy: str,
        dsn: str | None = None,
        *,
        schema: str = "parktwin",
        pool_size: int = 4,
    ) -> None:
        if strategy not in ("pessimistic", "optimistic"):
            raise ValueError(f"PostgreSQL stores do pessimistic or optimistic, not {strategy!r}")
        if psycopg is None:
            raise StoreUnavailable("psycopg is not installed (pip install 'parktwin[stores]')")
        self.strategy = strategy
        self.dsn = pg_dsn(dsn)
        self.schema = schema
        self._s = sql.Identifier(schema)
        try:
            self.pool = ConnectionPool(
                self.dsn,
                min_size=1,
                max_size=pool_size,
                open=True,
                timeout=30,
                kwargs={"autocommit": True},
            )
            self.pool.wait(timeout=5)
        except psycopg.Error as exc:  # pragma: no cover - depends on the server
            raise StoreUnavailable(f"no PostgreSQL at {self.dsn}: {exc}") from exc
        except Exception as exc:  # psycopg_pool.PoolTimeout
            raise StoreUnavailable(f"no PostgreSQL at {self.dsn}: {exc}") from exc
        self._open: dict[Hashable, psycopg.Connection] = {}  # pessimistic: tx per claim
        #: when a list: ``time.monotonic()`` appended as each statement's answer arrives (the
        #: hand-off probe's per-statement timeline); None: not recorded
        self.marks: list[float] | None = None
        self._q = {
            name: sql.SQL(text).format(s=self._s)
            for name, text in (
                ("lock", _LOCK),
                ("grant", _GRANT),
                ("hold", _HOLD),
                ("read", _READ),
                ("cas", _CAS),
                ("release", _RELEASE),
            )
        }

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply the migrations not applied yet; returns how many were."""
        s = self._s
        with self.pool.connection() as conn, conn.transaction():
            # one migrator at a time, whichever process gets here first
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}").format(s=s))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {s}.schema_migrations "
                    "(version integer PRIMARY KEY, applied_at timestamptz DEFAULT now())"
                ).format(s=s)
            )
            done = conn.execute(
                sql.SQL("SELECT coalesce(max(version), 0) FROM {s}.schema_migrations").format(s=s)
            ).fetchone()[0]
            for version, text in enumerate(MIGRATIONS, start=1):
                if version > done:
                    conn.execute(sql.SQL(text).format(s=s))
                    conn.execute(
                        sql.SQL("INSERT INTO {s}.schema_migrations (version) VALUES (%s)").format(
                            s=s
                        ),
                        (version,),
                    )
        return max(0, len(MIGRATIONS) - done)

    def setup(self, capacities: Mapping[str, int]) -> None:
        self.migrate()
        with self.pool.connection() as conn, conn.transaction():
            for target, cap in capacities.items():
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {s}.claim_counter (target, capacity) VALUES (%s, %s) "
                        "ON CONFLICT (target) DO UPDATE SET capacity = EXCLUDED.capacity"
                    ).format(s=self._s),
                    (target, cap),
                )

    def reset(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(sql.SQL("DELETE FROM {s}.claim_holder").format(s=self._s))
            conn.execute(
                sql.SQL("UPDATE {s}.claim_counter SET used = 0, version = 0").format(s=self._s)
            )

    def prefill(self, holders: Mapping[str, str]) -> None:
        """Grant units to ``holders`` (claim id → target) directly: a lot that starts part-full."""
        with self.pool.connection() as conn, conn.transaction():
            for claim_id, target in holders.items():
                conn.execute(self._q["grant"], (target,))
                conn.execute(self._q["hold"], (claim_id, target))

    # -- operations -------------------------------------------------------------------------
    def _run(self, conn, query, params=None):
        """One statement, its answer's arrival marked when :attr:`marks` records them."""
        cur = conn.execute(query, params)
        if self.marks is not None:
            self.marks.append(time.monotonic())
        return cur

    def perform(self, claim: RemoteClaim, op: Op) -> Outcome:
        q, key, run = self._q, claim.claim_id, self._run
        if op is Op.LOCK or (op is Op.UPDATE and self.strategy == "pessimistic"):
            conn = self.pool.getconn()
            self._open[key] = conn
            run(conn, "BEGIN")
            if op is Op.LOCK:
                row = run(conn, q["lock"], (claim.target,)).fetchone()
            else:
                row = run(conn, q["release"], (str(key),)).fetchone()
            if row is None:
                raise LookupError(f"no row for {claim.target!r} (or {key!r} holds none)")
            return Outcome(used=row[0], capacity=row[1])
        if op is Op.COMMIT or op is Op.ABORT:
            conn = self._open.pop(key)
            try:
                if op is Op.COMMIT and claim.kind is Kind.CLAIM:
                    run(conn, q["grant"], (claim.target,))
                    run(conn, q["hold"], (str(key), claim.target))
                run(conn, "COMMIT" if op is Op.COMMIT else "ROLLBACK")
            finally:
                self.pool.putconn(conn)
            return Outcome()
        with self.pool.connection() as conn:
            if op is Op.READ:
                used, cap, version = conn.execute(q["read"], (claim.target,)).fetchone()
                return Outcome(used=used, capacity=cap, version=version)
            if op is Op.CAS:
                cur = conn.execute(q["cas"], (claim.target, claim.seen_version, str(key)))
                return Outcome(matched=cur.rowcount == 1)
            if op is Op.UPDATE:
                if conn.execute(q["release"], (str(key),)).fetchone() is None:
                    raise LookupError(f"claim {key!r} holds no unit")
                return Outcome()
        raise ValueError(f"{op} is not an operation of {self.strategy} on PostgreSQL")

    # -- inspection -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT target, used FROM {s}.claim_counter").format(s=self._s)
            )
            return dict(rows.fetchall())

    def holder_counts(self) -> dict[str, int]:
        """Granted units per target, counted from the holder rows (must equal ``counts``)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT target, count(*) FROM {s}.claim_holder GROUP BY target").format(
                    s=self._s
                )
            )
            return {t: int(n) for t, n in rows.fetchall()}

    def close(self) -> None:
        for conn in self._open.values():
            conn.rollback()
            self.pool.putconn(conn)
        self._open.clear()
        self.pool.close()

    def drop(self) -> None:
        with self.pool.connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {s} CASCADE").format(s=self._s))
