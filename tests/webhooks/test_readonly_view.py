"""Readonly callers see a webhook's origin, not its URL: a receiver's path or query often
holds its credential (issue "Hardening", item 11)."""

from __future__ import annotations

from gatehouse.worker.embedded import InProcessRunner
from tests.factories import Account, Api
from tests.webhooks.conftest import WEBHOOKS, subscribe

SECRET_URL = "https://hooks.example.com:8443/services/T0/B0/s3cr3t?key=abc"


async def test_readonly_sees_the_origin_and_admins_the_full_url(
    api: Api, admin: Account, runner: InProcessRunner
) -> None:
    created = await subscribe(api, admin, SECRET_URL)
    readonly = await api.user("readonly")
    one = f"{WEBHOOKS}/{created['id']}"

    for account, expected in ((admin, SECRET_URL), (readonly, "https://hooks.example.com:8443")):
        listed = await api.client.get(WEBHOOKS, headers=account.headers)
        read = await api.client.get(one, headers=account.headers)
        assert listed.status_code == read.status_code == 200
        assert [row["url"] for row in listed.json()["data"]] == [expected]
        assert read.json()["url"] == expected
        if account is readonly:
            assert "s3cr3t" not in listed.text + read.text
    # The default port is named too, so two receivers on one host stay apart.
    await subscribe(api, admin, "https://other.example.com/path?token=x")
    listed = await api.client.get(WEBHOOKS, headers=readonly.headers)
    assert {row["url"] for row in listed.json()["data"]} == {
        "https://hooks.example.com:8443",
        "https://other.example.com:443",
    }
