"""`GET /metrics`: never in the OpenAPI document, never rate limited, never audited.

Who may read it is `GATEHOUSE_METRICS_ACCESS`: `loopback` (the default: a scraper on the
same host, and only when no trusted proxy forwarded the request for someone else),
`token` (a bearer token, compared in constant time) or `off` (404, as if absent).
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gatehouse.config import MetricsAccess
from gatehouse.dependencies import RuntimeDep
from gatehouse.errors import Forbidden, NotAuthenticated, NotFound
from gatehouse.metrics import exposition
from gatehouse.metrics.gauges import refresh_gauges

router = APIRouter(include_in_schema=False)


class MetricsRefused(Forbidden):
    default_message = "Metrics are served to loopback scrapers only (GATEHOUSE_METRICS_ACCESS)"
    # A scraper's mistake is not a security event of a user: no `authz.denied` row.
    audited = True


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@router.get("/metrics")
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    settings = runtime.settings.observability
    if settings.metrics_access is MetricsAccess.off:
        raise NotFound()
    if settings.metrics_access is MetricsAccess.token:
        expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        if not expected or not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
            raise NotAuthenticated("A valid metrics token is required")
    else:
        peer = request.client.host if request.client else None
        # Both the socket's peer and the client it stands for: a gateway on this host
        # forwarding an outside request is not a local scraper. A forwarded request is
        # refused even from a proxy Gatehouse was not told to trust: a local scraper
        # sends no such header, and a gateway that forwards every path would otherwise
        # expose /metrics to anyone who can reach the gateway.
        forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
        if forwarded or not (_is_loopback(peer) and _is_loopback(request.state.client_ip)):
            raise MetricsRefused()
    await refresh_gauges(runtime)
    return Response(exposition.render(), media_type=exposition.CONTENT_TYPE)
