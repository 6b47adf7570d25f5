"""The HTTP sender of webhook deliveries: one per process (a runtime Part).

Every connection goes through a network backend that resolves the host itself, vets
each address (see `targets`) and connects to the vetted address, so what was checked
is what is connected to; TLS still verifies the certificate against the URL's host
name. No proxy from the environment, no redirects, a bounded time per attempt, and
the response body is hardly read: only the status code counts.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

import httpcore
import httpx
import structlog

from gatehouse import __version__
from gatehouse.observability import tracing
from gatehouse.runtime import Runtime
from gatehouse.webhooks.targets import TargetRefused, TargetUnresolvable, vetted_addresses

log = structlog.get_logger("gatehouse.webhooks")

USER_AGENT = f"Gatehouse-Webhooks/{__version__}"
# Enough of a response to let the connection be reused; more is not worth reading.
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result: the status code if a response came, or why none did."""

    status_code: int | None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop (Standard Webhooks)."""
        return self.status_code == 410


class _VettingBackend(httpcore.AsyncNetworkBackend):
    """Connects only to vetted addresses of the requested host (DNS rebinding safe)."""

    def __init__(self, *, allow_private: bool, resolve_timeout: float) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._resolve_timeout = resolve_timeout

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._allow_private:
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await vetted_addresses(host, port, self._resolve_timeout)
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # noqa: S101 (vetted_addresses never returns [])
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _VettingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: _VettingBackend, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx has no public way to choose the network backend; its pool takes one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


class WebhookSender:
    """Posts signed deliveries; never raises for what the receiving end does."""

    def __init__(self, *, allow_private: bool, timeout: float) -> None:
        self.timeout = timeout
        backend = _VettingBackend(allow_private=allow_private, resolve_timeout=timeout)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._client = httpx.AsyncClient(
            transport=_VettingTransport(backend, limits),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )
        tracing.instrument_httpx(self._client)

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        settings = runtime.settings.worker
        return cls(
            allow_private=settings.webhook_allow_private_targets,
            timeout=settings.webhook_timeout_seconds,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """POST `body` to `url`; the whole attempt (DNS included) within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._post(url, body, headers)
        except TargetRefused as exc:
            return Outcome(None, _short(f"refused: {exc}"))
        except TargetUnresolvable as exc:
            return Outcome(None, _short(str(exc)))
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(None, f"no response within {self.timeout:g} s")
        except httpx.InvalidURL:
            return Outcome(None, "the URL is not valid")
        except httpx.TransportError as exc:
            # Connection refused, reset, TLS failure: the class and the OS's words, which
            # name no header and no body of ours.
            detail = str(exc) or type(exc).__name__
            return Outcome(None, _short(f"{type(exc).__name__}: {detail}"))
        except Exception as exc:
            log.exception("webhooks.send_failed")
            return Outcome(None, f"unexpected error ({type(exc).__name__})")

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        request = self._client.build_request("POST", url, content=body, headers=dict(headers))
        response = await self._client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(status)
        if 300 <= status < 400:
            return Outcome(status, f"HTTP {status} (redirects are not followed)")
        return Outcome(status, f"HTTP {status}")
