"""A real HTTP server on loopback for webhook tests: records every request, answers as told.

It runs in a thread of its own, so it answers whatever the test's event loop is doing
(waiting on a subprocess, draining jobs). Usage:

    with HttpReceiver() as receiver:
        receiver.url                  # "http://127.0.0.1:<port>/hook"
        receiver.respond_with(503)    # every answer from now on (default 200)
        receiver.fail_next(2)         # the next 2 requests get 500, then the default
        receiver.stall()              # hold answers (requests are recorded on arrival)...
        receiver.release()            # ...until released
        await receiver.wait_for(3)    # at least 3 requests arrived (bounded polling)
        receiver.requests             # what arrived, in order
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# A stalled request is answered after this long even if never released.
MAX_STALL_SECONDS = 120.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    # What it was answered: None while stalled, or if the client left before the answer
    # (so a request counts as delivered only if `status` is set).
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a sender timing out, a killed worker) is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HttpReceiver:
    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._status = 200
        self._failures_left = 0
        self._failure_status = 500
        self._released = threading.Event()
        self._released.set()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits
            name="http-receiver",
            daemon=True,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> HttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what it answers -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def respond_with(self, status: int) -> None:
        """Answer every request with `status` from now on."""
        with self._lock:
            self._status = status

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` requests with `status`, then the usual answer again."""
        with self._lock:
            self._failures_left = count
            self._failure_status = status

    def stall(self) -> None:
        """Hold every answer (requests are still recorded on arrival) until `release()`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    # --- what it received ------------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def answered(self, status_class: int = 2) -> list[Received]:
        """Requests answered with a status of this class (2 = 2xx)."""
        return [
            r for r in self.requests if r.status is not None and r.status // 100 == status_class
        ]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """Wait until at least `count` requests arrived; AssertionError after `within`."""
        deadline = time.monotonic() + within
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} requests within {within} s, got {len(self.requests)}"
                )
            await asyncio.sleep(0.02)
        return self.requests

    def wait_for_sync(self, count: int, within: float = 10.0) -> list[Received]:
        """The same, for a test without an event loop."""
        deadline = time.monotonic() + within
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} requests within {within} s, got {len(self.requests)}"
                )
            time.sleep(0.02)
        return self.requests

    # --- the server side -------------------------------------------------------------------

    def _next_status(self) -> int:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return self._failure_status
            return self._status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                item = Received(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
                with receiver._lock:
                    receiver._requests.append(item)
                receiver._released.wait(MAX_STALL_SECONDS)
                if self._client_gone():
                    return  # e.g. a worker killed while we stalled: nobody to answer
                status = receiver._next_status()
                payload = json.dumps({"received": True}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:
                    return  # the client went away while we held the answer
                item.status = status

            do_POST = do_GET = do_PUT = _handle  # noqa: N815

            def _client_gone(self) -> bool:
                """Whether the client closed its end (a write could still "succeed")."""
                sock = self.connection
                try:
                    sock.setblocking(False)
                    try:
                        data = sock.recv(1, socket.MSG_PEEK)
                    finally:
                        sock.setblocking(True)
                except BlockingIOError:
                    return False
                except OSError:
                    return True
                return bool(data == b"")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
