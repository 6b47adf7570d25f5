"""A TCP proxy on loopback in front of a real service, for fault injection.

Point a client at the proxy instead of the service, then break the link without
touching the service other tests share:

    proxy = TcpProxy.for_url(rabbitmq_url)
    proxy.start()
    url = proxy.url(rabbitmq_url)   # same URL, host and port of the proxy
    proxy.block()    # refuse new connections and reset the open ones (service "down")
    proxy.resume()   # back to normal
    proxy.cut()      # reset the open connections only (a network blip)
    proxy.stall()    # keep connections open but forward nothing (until resume())
    proxy.stop()

It runs its own event loop in a thread, so the same calls work from sync tests, from
async tests, and while the test's loop is blocked. Every call is thread-safe and
returns once the proxy is in the new state.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (what a crashed peer or a `reset_peer` fault looks like)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)
        for pump in self.pumps:
            pump.cancel()


@dataclass
class Counters:
    accepted: int = 0
    refused: int = 0
    resets: int = 0


class TcpProxy:
    def __init__(
        self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.counters = Counters()
        self._blocked = False
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError("the URL needs an explicit host and port")
        return cls(parts.hostname, parts.port)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}@{self.host}:{self.port}" if userinfo else f"{self.host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def connections(self) -> int:
        return len(self._links)

    # --- control (from any thread) -------------------------------------------------------

    def start(self) -> TcpProxy:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._call(self._serve)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = self._thread = None

    def block(self) -> None:
        """Refuse new connections and reset the open ones, until resume()."""
        self._call(self._block)

    def cut(self) -> None:
        """Reset the open connections; new ones are accepted."""
        self._call(self._cut)

    def stall(self) -> None:
        """Keep the connections open but forward nothing, until resume()."""
        self._call(self._stall)

    def resume(self) -> None:
        self._call(self._resume)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def _call(self, action: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self._loop is None:
            raise RuntimeError("the proxy is not running")
        return asyncio.run_coroutine_threadsafe(action(), self._loop).result(timeout=10)

    # --- on the proxy's loop ---------------------------------------------------------------

    async def _serve(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _block(self) -> None:
        self._blocked = True
        await self._cut()

    async def _cut(self) -> None:
        for link in list(self._links):
            link.reset()
            self.counters.resets += 1
        self._links.clear()

    async def _stall(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    async def _resume(self) -> None:
        assert self._flowing is not None
        self._blocked = False
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._blocked:
            self.counters.refused += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            self.counters.refused += 1
            _reset(writer)
            return
        if self._blocked:  # blocked while we were connecting
            _reset(writer)
            _reset(up_writer)
            return
        self.counters.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]
        for pump in link.pumps:
            self._tasks.add(pump)
            pump.add_done_callback(self._tasks.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link
    ) -> None:
        assert self._flowing is not None
        try:
            while data := await source.read(CHUNK):
                await self._flowing.wait()
                if link not in self._links:
                    return
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return
        # One side closed: close the other too (as a plain FIN).
        if link in self._links:
            self._links.discard(link)
            for other in (link.client, link.upstream):
                other.close()
            for pump in link.pumps:
                if pump is not asyncio.current_task():
                    pump.cancel()
