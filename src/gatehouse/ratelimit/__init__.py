"""Rate limits: per client IP for anonymous callers, per user for authenticated ones,
tighter buckets of their own for the login, registration, refresh and password-reset
endpoints. Counters live in Redis when it is configured (shared by every process), in
this process's memory otherwise; a Redis outage falls back to memory (or 503)."""

from gatehouse.ratelimit.limiter import Decision, Policy, RateLimiter, RateLimitUnavailable
from gatehouse.ratelimit.middleware import RateLimitMiddleware

__all__ = ["Decision", "Policy", "RateLimitMiddleware", "RateLimitUnavailable", "RateLimiter"]
