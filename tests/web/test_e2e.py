"""The web apps end to end: a real Chromium (Debian's `chromium`, driven by
playwright-core) against a live `gatehouse serve` on loopback with a fresh SQLite
database, serving the apps built in web/dist (`make test` builds them first).

The scenarios are in web/e2e/*.e2e.mjs; a failed step leaves a screenshot in
web/e2e/artifacts/failures. Without node, Chromium or a build the suite is skipped
(a failure under REQUIRE_SERVICES=1) and the summary says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests import services
from tests.processes import ROOT, ServerProcess, serve, stop
from tests.redis_server import free_port
from tests.smtp import SmtpServer

WEB = ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "river stone lantern 42"
MFA_ADMIN_EMAIL = "mfa-admin@example.com"
ACCESS_TTL = 30  # the shortest the settings allow; the expired-token scenario waits it out
RUN_LIMIT = 300


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        return "web/node_modules is missing (make web)"
    pages = [WEB / "dist" / "index.html", WEB / "dist" / "admin" / "index.html"]
    if not all(page.is_file() for page in pages):
        return "the web apps are not built (make web)"
    return None


@pytest.fixture
def browser_ready() -> None:
    reason = _missing()
    if reason is not None:
        services.skip_suite("web e2e (Chromium)", reason)


def _server_env(tmp_path: Path, url: str, smtp: SmtpServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        # The emails' links lead to this server's client app.
        "GATEHOUSE_PUBLIC_URL": url,
        "GATEHOUSE_SMTP_HOST": smtp.host,
        "GATEHOUSE_SMTP_PORT": str(smtp.port),
        "GATEHOUSE_SMTP_SECURITY": "none",
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "GATEHOUSE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}",
        "GATEHOUSE_WEB_DIR": str(WEB / "dist"),
        "GATEHOUSE_ADMIN_EMAIL": ADMIN_EMAIL,
        "GATEHOUSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS": str(ACCESS_TTL),
        "GATEHOUSE_JWT_LEEWAY_SECONDS": "0",
        "GATEHOUSE_LOG_FORMAT": "json",
        # Every browser of the suite comes from 127.0.0.1, so the per-address budgets that
        # fit one person are raised; the limits themselves are tested in tests/ratelimit.
        "GATEHOUSE_RATE_LIMIT_LOGIN": "200/minute",
        "GATEHOUSE_RATE_LIMIT_REFRESH": "600/minute",
        "GATEHOUSE_RATE_LIMIT_REGISTER": "100/hour",
    }
    return env


def _write_mail(directory: Path, index: int, message: EmailMessage) -> None:
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    mail = {"to": str(message["To"]), "subject": str(message["Subject"]), "text": text}
    partial = directory / f"{index:04d}.tmp"
    partial.write_text(json.dumps(mail), encoding="utf-8")
    partial.rename(partial.with_suffix(".json"))  # the scenarios never read half a file


@contextlib.asynccontextmanager
async def mailbox(smtp: SmtpServer, directory: Path) -> AsyncIterator[None]:
    """Each mail the server receives, as a JSON file the scenarios read (to, subject, text)."""
    directory.mkdir()  # noqa: ASYNC240 (once, before anything runs)

    async def copy() -> None:
        written = 0
        while True:
            for message in smtp.messages[written:]:
                _write_mail(directory, written, message)
                written += 1
            await asyncio.sleep(0.05)

    task = asyncio.create_task(copy())
    try:
        yield
    finally:
        task.cancel()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


async def _migrate(env: dict[str, str]) -> None:
    migrate = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gatehouse")), "migrate", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    migrated, _ = await migrate.communicate()
    assert migrate.returncode == 0, migrated.decode(errors="replace")


async def _run_scenarios(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "node", "e2e/run.mjs", cwd=WEB, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), RUN_LIMIT)
    except TimeoutError:
        proc.kill()
        output, _ = await proc.communicate()
        pytest.fail(f"e2e did not finish in {RUN_LIMIT}s:\n{output.decode(errors='replace')}")
    return proc.returncode or 0, output.decode(errors="replace")


async def _policy_server(tmp_path: Path, smtp: SmtpServer) -> tuple[ServerProcess, str]:
    """A second server whose policy requires MFA of admins (the portal's enrolment
    screen), on a database of its own; its URL and its first admin's email."""
    port = free_port()
    directory = tmp_path / "policy"
    directory.mkdir()
    env = _server_env(directory, f"http://localhost:{port}", smtp)
    env |= {"GATEHOUSE_ADMIN_EMAIL": MFA_ADMIN_EMAIL, "GATEHOUSE_MFA_REQUIRED_ROLES": "admin"}
    await _migrate(env)
    return await serve(env, directory / "server.log", port), f"http://localhost:{port}"


async def test_web_apps_end_to_end(browser_ready: None, smtp: SmtpServer, tmp_path: Path) -> None:
    port = free_port()
    # localhost, not 127.0.0.1: WebAuthn needs a domain as the relying party's id.
    url = f"http://localhost:{port}"
    env = _server_env(tmp_path, url, smtp)
    await _migrate(env)
    server = await serve(env, tmp_path / "server.log", port)
    policy, policy_url = await _policy_server(tmp_path, smtp)
    try:
        node_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        node_env |= {
            "E2E_BASE_URL": url,
            "E2E_MFA_BASE_URL": policy_url,
            "E2E_MFA_ADMIN_EMAIL": MFA_ADMIN_EMAIL,
            "E2E_ADMIN_EMAIL": ADMIN_EMAIL,
            "E2E_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "E2E_ACCESS_TTL": str(ACCESS_TTL),
            "E2E_MAIL_DIR": str(tmp_path / "mail"),
            "CHROMIUM": CHROMIUM,
        }
        async with mailbox(smtp, tmp_path / "mail"):
            status, report = await _run_scenarios(node_env)
        print(report)
        assert status == 0, f"{report}\n--- server log ---\n{server.output()[-6000:]}"
    finally:
        await stop(policy)
        await stop(server)
