"""Gauges read from the database at scrape time: the same answer whichever process (API
or worker) does the work, because the database is where the work waits."""

from __future__ import annotations

from gatehouse.runtime import Runtime


async def refresh_gauges(runtime: Runtime) -> None:
    """Set the outbox and webhook backlog gauges from the database."""
