"""Every Prometheus family Gatehouse exports, in one place (docs/metrics.md lists them).

Features import the family they count and call it where the thing happens; nothing
else is needed. A process started by `gatehouse serve --workers N` or by
`gatehouse worker --metrics-port N` writes its values to files in the per-run directory
(`PROMETHEUS_MULTIPROC_DIR`, set by those commands before any worker process starts),
and `GET /metrics` (or the worker's port) sums every process's files: see
`gatehouse.metrics.exposition`.

Conventions: the `gatehouse_` prefix, base units (seconds, bytes), `_total` on
counters, labels with a small fixed set of values (a route template, never a path).
"""

from __future__ import annotations

import os

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

# 1 ms to 10 s: p50/p95/p99 of a request or a job by `histogram_quantile`.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Waits that are usually nothing: a pool checkout, SQLite's write lock.
WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)


# Gatehouse's own registry, not prometheus-client's global one: a second import of this
# module (tests that re-import every module) builds a fresh one instead of clashing.
REGISTRY = CollectorRegistry()
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)


def multiprocess_dir() -> str | None:
    """The per-run directory when this process shares its metrics with others."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# --- HTTP -----------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "gatehouse_http_requests_total",
    "Requests answered, by route template, method and status class (2xx, 4xx, ...).",
    ["route", "method", "status_class"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "gatehouse_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "gatehouse_http_requests_in_flight",
    "Requests being answered now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
HTTP_CLIENT_DISCONNECTS = Counter(
    "gatehouse_http_client_disconnects_total",
    "Clients gone before their answer (logged with status 499), by when: while their body "
    "was read (body) or while the app worked on it (app).",
    ["during"],
    registry=REGISTRY,
)
DEPRECATED_CALLS = Counter(
    "gatehouse_deprecated_calls_total",
    "Calls to deprecated routes, by route template and method (docs/api-versioning.md).",
    ["route", "method"],
    registry=REGISTRY,
)

# --- Database -------------------------------------------------------------------------
DB_POOL_SIZE = Gauge(
    "gatehouse_db_pool_size",
    "Connections the pool keeps open (its configured size), summed over processes.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_CHECKED_OUT = Gauge(
    "gatehouse_db_pool_checked_out",
    "Connections in use now, summed over processes.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_OVERFLOW = Gauge(
    "gatehouse_db_pool_overflow",
    "Connections open beyond the pool's size now, summed over processes.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_MAX = Gauge(
    "gatehouse_db_pool_max",
    "The most connections the pool may open (size + overflow), summed over processes.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_WAIT = Histogram(
    "gatehouse_db_pool_wait_seconds",
    "Time spent waiting for a connection from the pool.",
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
SQLITE_WRITE_LOCK_WAIT = Histogram(
    "gatehouse_sqlite_write_lock_wait_seconds",
    "Time spent taking SQLite's write lock (BEGIN IMMEDIATE); SQLite only.",
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)

DB_REPLICA_READS = Counter(
    "gatehouse_db_replica_reads_total",
    "Reads that tolerate lag, by where they ran (replica, primary): the primary serves "
    "an actor's own recent writes and the fallbacks.",
    ["target"],
    registry=REGISTRY,
)
DB_REPLICA_FALLBACKS = Counter(
    "gatehouse_db_replica_fallbacks_total",
    "Reads that tolerate lag sent to the primary because the read replica could not "
    "serve them, by reason (unavailable, lagging).",
    ["reason"],
    registry=REGISTRY,
)
DB_REPLICA_UNAVAILABLE = Gauge(
    "gatehouse_db_replica_unavailable",
    "1 while a process sends its lag-tolerant reads to the primary because the read "
    "replica failed (refused, timed out, dropped a connection); 0 once it serves again.",
    multiprocess_mode="max",
    registry=REGISTRY,
)
DB_REPLICA_LAG = Gauge(
    "gatehouse_db_replica_lag_seconds",
    "How far the read replica's replay is behind the primary, as last measured; the "
    "highest over processes.",
    multiprocess_mode="livemax",
    registry=REGISTRY,
)

# --- Cache and Redis ------------------------------------------------------------------
CACHE_LOOKUPS = Counter(
    "gatehouse_cache_lookups_total",
    "Cache lookups by kind (principal, user) and result (hit, miss).",
    ["kind", "result"],
    registry=REGISTRY,
)
REDIS_BREAKER_OPEN = Gauge(
    "gatehouse_redis_breaker_open",
    "1 while a process has stopped calling Redis after failures (its breaker is open).",
    multiprocess_mode="max",
    registry=REGISTRY,
)
REDIS_FALLBACKS = Counter(
    "gatehouse_redis_fallbacks_total",
    "Operations that fell back from Redis to the in-process or database path, by use.",
    ["use"],
    registry=REGISTRY,
)

# --- Rate limits and authentication ---------------------------------------------------
RATE_LIMIT_REJECTIONS = Counter(
    "gatehouse_rate_limit_rejections_total",
    "Requests refused with 429, by bucket.",
    ["bucket"],
    registry=REGISTRY,
)
LOGINS = Counter(
    "gatehouse_logins_total",
    "Password logins by outcome: success, invalid, locked, rate_limited, mfa_required.",
    ["outcome"],
    registry=REGISTRY,
)
REFRESHES = Counter(
    "gatehouse_token_refreshes_total",
    "Refresh-token exchanges by outcome: success, invalid, reuse_detected.",
    ["outcome"],
    registry=REGISTRY,
)
TOKENS_ISSUED = Counter(
    "gatehouse_tokens_issued_total",
    "Tokens issued, by kind (access, refresh).",
    ["kind"],
    registry=REGISTRY,
)

# --- Outbox, webhooks, emails ---------------------------------------------------------
OUTBOX_PENDING = Gauge(
    "gatehouse_outbox_pending",
    "Events not yet published to the broker (or, without one, not yet dispatched).",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "gatehouse_outbox_oldest_pending_age_seconds",
    "Age of the oldest event still pending; 0 when none is.",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
OUTBOX_PUBLISHED = Counter(
    "gatehouse_outbox_published_total",
    "Events published to the broker (confirmed).",
    ["event_type"],
    registry=REGISTRY,
)
OUTBOX_FAILURES = Counter(
    "gatehouse_outbox_publish_failures_total",
    "Publish attempts that failed (the event stays pending and is retried).",
    ["reason"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "gatehouse_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered, failed (retried), dead (given up).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_DURATION = Histogram(
    "gatehouse_webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt, up to the receiver's answer or the timeout.",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_PENDING = Gauge(
    "gatehouse_webhook_deliveries_pending",
    "Webhook deliveries waiting for their first or next attempt.",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
EMAILS = Counter(
    "gatehouse_emails_total",
    "Emails by kind and outcome (sent, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
)

# --- Jobs -----------------------------------------------------------------------------
TASKS = Counter(
    "gatehouse_tasks_total",
    "Background jobs run, by name and outcome (success, failure).",
    ["task", "outcome"],
    registry=REGISTRY,
)
TASK_DURATION = Histogram(
    "gatehouse_task_duration_seconds",
    "Time a background job ran, by name.",
    ["task"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
BEAT_LAST_RUN = Gauge(
    "gatehouse_beat_last_run_timestamp_seconds",
    "Unix time at which the scheduler last sent each periodic job.",
    ["task"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
AUDIT_CHAIN_OK = Gauge(
    "gatehouse_audit_chain_ok",
    "1 if the audit chain verified at the last check (the cleanup job), 0 if it did not.",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
AUDIT_UNSEALED = Gauge(
    "gatehouse_audit_unsealed_rows",
    "Audit rows recorded but not yet sealed into the chain (not tamper-evident yet).",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
AUDIT_UNSEALED_OLDEST_AGE = Gauge(
    "gatehouse_audit_unsealed_oldest_age_seconds",
    "Age of the oldest audit row not yet sealed into the chain; 0 when none is.",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
AUDIT_CHAIN_VERIFIED_AT = Gauge(
    "gatehouse_audit_chain_last_verified_timestamp_seconds",
    "Unix time of the last audit chain check.",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)

# --- The process ----------------------------------------------------------------------
BUILD_INFO = Gauge(
    "gatehouse_build_info",
    "Always 1; the labels say which Gatehouse, Python and database kind is running.",
    ["version", "python", "database"],
    multiprocess_mode="max",
    registry=REGISTRY,
)
