"""SSRF protection: with GATEHOUSE_WEBHOOK_ALLOW_PRIVATE_TARGETS off (the default), a
webhook may not target loopback, private, link-local, CGNAT, multicast, reserved or
unspecified addresses, in IPv4 or IPv6, nor a name resolving to one: refused when the
subscription is saved (400) and again at delivery time, after DNS resolution."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import pytest

from gatehouse.webhooks import targets
from gatehouse.webhooks.delivery import Outcome, WebhookSender
from gatehouse.webhooks.models import WebhookSubscription
from gatehouse.webhooks.signing import new_secret
from gatehouse.webhooks.targets import TargetRefused, is_forbidden, resolve, vet
from gatehouse.worker.embedded import InProcessRunner
from tests.factories import PASSWORD, Account, Api, assert_envelope
from tests.http_receiver import HttpReceiver
from tests.webhooks.conftest import WEBHOOKS, deliveries_of, subscription

PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://100.64.0.1/hook",  # CGNAT
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[::ffff:10.0.0.1]/hook",
    "http://[fe80::1]/hook",  # link-local
    "http://[fc00::1]/hook",  # unique local
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
    "http://localhost/hook",
    "http://LOCALHOST.:8000/hook",
    "http://api.localhost/hook",
    "http://2130706433/hook",  # 127.0.0.1, as the resolver reads a number
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_allow_private_targets": False, "webhook_retry_schedule": [0]}


async def test_private_targets_are_refused_at_create_and_update(api: Api, admin: Account) -> None:
    for url in PRIVATE_URLS:
        response = await api.client.post(
            WEBHOOKS, json={"url": url, "event_types": ["*"]}, headers=admin.headers
        )
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert list(error["details"]) == ["url"], (url, error)
        assert "not" in error["details"]["url"][0], error
    # A public address is fine (nothing is sent to it here), and so is a name that does
    # not resolve now: every delivery checks again.
    for url in ("https://93.184.215.14/hook", "https://hooks.gatehouse.invalid/hook"):
        created = await api.client.post(
            WEBHOOKS, json={"url": url, "event_types": ["user.deleted"]}, headers=admin.headers
        )
        assert created.status_code == 201, (url, created.text)
    patched = await api.client.patch(
        f"{WEBHOOKS}/{created.json()['id']}",
        json={"url": "http://[::1]:9000/x"},
        headers=admin.headers,
    )
    assert "url" in assert_envelope(patched, 400, "VALIDATION_ERROR")["details"]


async def test_delivery_refuses_a_private_target_already_stored(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    """A row saved while the flag was on (or a name that resolves differently now)."""
    ids = []
    async with api.runtime.db.session() as session:
        for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
            row = WebhookSubscription(
                id=uuid.uuid4(), url=url, event_types=["user.created"], secret=new_secret()
            )
            session.add(row)
            ids.append(str(row.id))
    response = await api.client.post(
        "/api/v1/users",
        json={"email": "jane@example.com", "name": "Jane", "password": PASSWORD},
        headers=admin.headers,
    )
    assert response.status_code == 201
    await runner.drain()

    assert receiver.requests == []
    for webhook_id in ids:
        (delivery,) = await deliveries_of(api.runtime, webhook_id)
        assert (delivery.status, delivery.attempts) == ("failed", 2)
        assert delivery.last_status_code is None
        assert delivery.last_error is not None
        assert delivery.last_error.startswith("refused: ")
        assert "not a public address; private targets are not allowed" in delivery.last_error
        assert (await subscription(api.runtime, webhook_id)).enabled is False
    assert receiver.requests == []


async def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    """The rule behind the delivery-time check, without the shortcut for local names."""
    addresses = await resolve("localhost", 80, within=5)
    assert (
        ipaddress.ip_address("127.0.0.1") in addresses or ipaddress.ip_address("::1") in addresses
    )
    with pytest.raises(TargetRefused, match=r"localhost resolves to .*, which is not a public"):
        vet("localhost", addresses)
    public = [ipaddress.ip_address("93.184.215.14")]
    assert vet("example.com", public) == public
    with pytest.raises(TargetRefused):
        vet("example.com", [*public, ipaddress.ip_address("10.0.0.1")])  # one is enough


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("93.184.215.14", False),
        ("2001:4860:4860::8888", False),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False),
        ("100.127.255.255", True),
        ("198.18.0.1", True),  # benchmarking
        ("192.0.2.1", True),  # documentation
        ("240.0.0.1", True),  # reserved
        ("::ffff:8.8.8.8", True),  # mapped: refused whatever it maps
        ("::127.0.0.1", True),  # IPv4-compatible
        ("fec0::1", True),  # site-local
        ("ff02::1", True),  # multicast
        ("2001:db8::1", True),  # documentation
        ("64:ff9b::808:808", True),  # NAT64: refused whatever it translates to
    ],
)
def test_address_classes(address: str, forbidden: bool) -> None:
    assert is_forbidden(ipaddress.ip_address(address)) is forbidden


async def test_connects_to_the_vetted_address_under_the_original_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sender connects to the address it vetted, yet speaks to the URL's host name.

    Nothing public is reachable from a test run, so the policy is told to take loopback
    for public; the resolver, the connection and the receiver are real.
    """
    monkeypatch.setattr(targets, "is_forbidden", lambda ip: not ip.is_loopback)
    monkeypatch.setattr(targets, "refuse_local_name", lambda host: None)
    with HttpReceiver() as receiver:
        sender = WebhookSender(allow_private=False, timeout=5)
        try:
            url = receiver.url.replace("127.0.0.1", "localhost")
            outcome = await sender.send(url, b"{}", {"webhook-id": "msg_1"})
        finally:
            await sender.aclose()
    assert outcome == Outcome(200)
    (request,) = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.port}"


async def test_the_sender_bounds_time_and_follows_no_redirect() -> None:
    with HttpReceiver() as receiver:
        sender = WebhookSender(allow_private=True, timeout=0.5)
        try:
            receiver.respond_with(302)
            redirected = await sender.send(receiver.url, b"{}", {})
            receiver.stall()
            stalled = await sender.send(receiver.url, b"{}", {})
            receiver.release()
            refused = await sender.send("http://127.0.0.1:1/", b"{}", {})  # nobody listens
        finally:
            await sender.aclose()
    assert redirected == Outcome(302, "HTTP 302 (redirects are not followed)")
    assert stalled == Outcome(None, "no response within 0.5 s")
    assert refused.status_code is None
    assert refused.error is not None
    assert refused.error.startswith("ConnectError")
    assert len(receiver.requests) == 2
