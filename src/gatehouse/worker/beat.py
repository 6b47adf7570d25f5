"""`gatehouse beat`'s Celery Beat, which a signal stops between publishes.

Celery's own SIGTERM handler closes the scheduler's broker connection inside the
handler. A signal that lands while the scheduler is publishing re-enters amqp's frame
writer on that same connection, and the process hangs for good (seen: beat still
running a minute after SIGTERM, stuck writing the connection's Close frame in the
middle of a Channel.Open). Here the signal only asks the service to stop: its loop ends
after the publish or the sleep in progress (at most `max_interval`, 5 s) and the
connection is closed from the main flow, as on any other exit.
"""

from __future__ import annotations

from types import FrameType

from celery.apps.beat import Beat  # type: ignore[import-untyped]
from celery.beat import Service  # type: ignore[import-untyped]
from celery.platforms import signals  # type: ignore[import-untyped]


class StopBetweenPublishes(Beat):  # type: ignore[misc]
    def install_sync_handler(self, service: Service) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            service.stop()

        signals.update(SIGTERM=stop, SIGINT=stop)
