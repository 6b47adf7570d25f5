"""The refusals of the webhook subscriptions API."""

from __future__ import annotations

from gatehouse.errors import Conflict, NotFound


class WebhookNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"

    def __init__(self, webhook_id: object) -> None:
        super().__init__(f"Webhook with ID '{webhook_id}' not found")


class WebhookInactive(Conflict):
    code = "WEBHOOK_DISABLED"
    default_message = "The webhook is disabled; enable it first"
