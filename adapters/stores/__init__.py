"""Claim stores: the core's claim strategies (twin.core.locking) against real servers.

``pessimistic`` and ``optimistic`` on PostgreSQL (psycopg 3, psycopg_pool), ``atomic`` and
``queue`` on Redis (redis-py). Each store only performs operations; every decision is the
core's (``RemoteClaim``), run by :func:`run_claim` / :func:`run_release`. Needs the ``stores``
extra: ``pip install 'parktwin[stores]'``.
"""

from __future__ import annotations

from .base import (
    ClaimStore,
    StoreUnavailable,
    pg_dsn,
    redis_url,
    run_claim,
    run_release,
)

__all__ = [
    "STORE_OF",
    "ClaimStore",
    "StoreUnavailable",
    "open_store",
    "pg_dsn",
    "redis_url",
    "run_claim",
    "run_release",
]

#: Which server each strategy runs on.
STORE_OF = {
    "pessimistic": "postgres",
    "optimistic": "postgres",
    "atomic": "redis",
    "queue": "redis",
}


def open_store(
    strategy: str, url: str | None = None, *, namespace: str = "parktwin", pool_size: int = 4
):
    """The store for ``strategy``: PostgreSQL (``namespace`` = schema) or Redis (key prefix).

    ``pool_size`` bounds the connections this process opens. ``url`` defaults to
    ``$PARKTWIN_PG_DSN`` / ``$PARKTWIN_REDIS_URL``, then the local server.
    """
    if strategy not in STORE_OF:
        raise ValueError(f"unknown claim strategy {strategy!r} (allowed: {', '.join(STORE_OF)})")
    if STORE_OF[strategy] == "postgres":
        from .postgres_store import PostgresClaimStore

        return PostgresClaimStore(strategy, url, schema=namespace, pool_size=pool_size)
    from .redis_store import AtomicCounterStore, QueueStore

    cls = AtomicCounterStore if strategy == "atomic" else QueueStore
    return cls(url, prefix=namespace, pool_size=pool_size)
