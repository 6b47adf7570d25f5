"""What `gatehouse serve` allows one client before its request reaches the app.

uvicorn's h11 protocol, with the limits it lacks: the request head (line and headers)
has a size cap (h11's incomplete-event limit) and a header count, both answered 431;
the head must arrive within a deadline from the connection (or from the first byte of a
later request on a kept-alive one), else the connection is closed; and a process holds
a bounded number of connections, the ones over it answered 503. h11 rather than
httptools: httptools buffers a header of any size before uvicorn sees it.

The body's size and deadline are the body guard's (`kit/middleware.py`), the idle time
between requests is uvicorn's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import Server, ServerState

from gatehouse.config import ServerSettings
from gatehouse.kit.middleware import send_error


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int
    max_header_count: int
    header_timeout_seconds: float
    keepalive_timeout_seconds: float
    max_connections: int

    @classmethod
    def from_settings(cls, server: ServerSettings) -> ServerLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_header_count=server.max_header_count,
            header_timeout_seconds=server.header_timeout_seconds,
            keepalive_timeout_seconds=server.keepalive_timeout_seconds,
            max_connections=server.max_connections,
        )


class GatehouseConfig(Config):
    """uvicorn's configuration plus our limits (pickled as is to worker processes)."""

    def __init__(self, app: str, *, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(
            app,
            http=GuardedH11Protocol,
            h11_max_incomplete_event_size=limits.max_header_bytes,
            timeout_keep_alive=int(limits.keepalive_timeout_seconds),
            **kwargs,
        )
        self.limits = limits


def uvicorn_config(
    app: str, settings: ServerSettings, *, host: str, port: int, workers: int, factory: bool
) -> GatehouseConfig:
    """How `gatehouse serve` runs uvicorn; the benchmark serves its bare app with it too,
    so the two are compared under the same protocol, loop and limits."""
    return GatehouseConfig(
        app,
        limits=ServerLimits.from_settings(settings),
        factory=factory,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        # Generous: a worker that imports slowly must not be killed in a restart loop.
        timeout_worker_healthcheck=30,
        # SIGTERM: stop accepting, let the requests in flight finish this long, then
        # cut off the rest and run the lifespan's shutdown (uvicorn waits forever).
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        proxy_headers=False,
    )


class GatehouseServer(Server):
    """uvicorn's server, exiting 0 after the graceful shutdown a signal asked for.

    uvicorn raises the signal again once it has shut down, so the process ends killed
    by SIGTERM (status 143): a service manager or an orchestrator that reads that as a
    failure (or a test that checks the status) cannot tell a clean stop from a crash.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # Reached only when serving ended normally: the shutdown is done.
            self._captured_signals.clear()


def _head_size(request: h11.Request) -> int:
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers) + 2


class _CountingConnection(h11.Connection):
    """An h11 connection that also refuses a request with too many header fields, and
    remembers when a refusal is a 431 (uvicorn answers every refusal 400)."""

    def __init__(self, max_incomplete_event_size: int, max_header_count: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self.max_head_bytes = max_incomplete_event_size
        self.max_header_count = max_header_count
        self.head_too_large = False

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request) and (
                len(event.headers) > self.max_header_count
                or _head_size(event) > self.max_head_bytes
            ):
                # h11's own limit only applies while the head is incomplete: a big head
                # that arrives in one read is parsed whole.
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        except h11.RemoteProtocolError as exc:
            self.head_too_large = exc.error_status_hint == 431
            raise
        return event


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    await send_error(
        send,
        503,
        "SERVICE_UNAVAILABLE",
        "The server has too many open connections; try again shortly",
        headers=[(b"connection", b"close"), (b"retry-after", b"1")],
    )


class GuardedH11Protocol(H11Protocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = getattr(config, "limits", None)
        if not isinstance(limits, ServerLimits):
            raise TypeError("GuardedH11Protocol needs a GatehouseConfig")
        self.limits = limits
        self.conn = _CountingConnection(limits.max_header_bytes, limits.max_header_count)
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._refusal: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # self.connections includes this one.
        if len(self.connections) > self.limits.max_connections:
            self.app = _over_capacity
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the 431 is on its way, then the connection closes
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def _watch_head(self) -> None:
        if self.transport.is_closing():
            self._cancel_head_timer()
        elif self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is in
        elif self.conn.trailing_data[0]:
            # Part of a (next) request head is waiting: it has the deadline from now.
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_seconds, self._head_timed_out
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if not isinstance(self.conn, _CountingConnection) or not self.conn.head_too_large:
            super().send_400_response(msg)
            return
        self._refused = True
        self._cancel_head_timer()
        self.transport.pause_reading()
        self._refusal = self.loop.create_task(self._send_431())

    async def _send_431(self) -> None:
        async def write(message: Message) -> None:
            if message["type"] == "http.response.start":
                event: Any = h11.Response(
                    status_code=message["status"],
                    headers=message["headers"],
                    reason=b"Request Header Fields Too Large",
                )
                self.transport.write(self.conn.send(event) or b"")
            else:
                self.transport.write(self.conn.send(h11.Data(data=message["body"])) or b"")
                self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")

        try:
            await send_error(
                write,
                431,
                "HEADERS_TOO_LARGE",
                f"The request head is over {self.limits.max_header_bytes} bytes or "
                f"{self.limits.max_header_count} header fields",
                headers=[(b"connection", b"close")],
            )
        except h11.LocalProtocolError:
            pass  # h11 cannot answer in this state: closing is the answer
        finally:
            self.transport.close()


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on host:port, or OSError (the port is taken, say).

    Bound and listening before `serve` announces anything or creates the first admin,
    so a port held by another program stops the start instead of being announced.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
