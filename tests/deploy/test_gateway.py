"""deploy/nginx/gatehouse.conf in a real nginx, in front of two `gatehouse serve`
processes on one PostgreSQL database and one Redis prefix.

The config is the real file with its placeholders filled with loopback values (and its
ports and log paths moved into the test's directory). nginx reaches the instances from
127.0.0.1, the one trusted proxy (GATEHOUSE_TRUSTED_PROXIES); the test's clients come
from other loopback addresses (127.0.0.2...), as outside clients would. Which instance
answered a request is read from the gateway's access log, by request id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import grp
import ipaddress
import json
import os
import pwd
import re
import secrets
import signal
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyrage import x25519
from sqlalchemy.engine import make_url

from gatehouse.config import ServerSettings
from gatehouse.db import migrate
from gatehouse.exception_handlers import HTTP_CODES
from gatehouse.kit.http import sane_request_id
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService
from tests import services
from tests.conftest import make_settings
from tests.deploy.support import DEPLOY, ROOT, tool
from tests.factories import PASSWORD
from tests.processes import ServerProcess, start, stop, wait_healthy
from tests.redis_server import drop_keys, free_port

# One worker runs the whole module (`make test` distributes by group): one nginx and two
# instances for all of it.
pytestmark = pytest.mark.xdist_group("nginx-gateway")

CONF = DEPLOY / "nginx" / "gatehouse.conf"
DIST = ROOT / "web" / "dist"
SERVER_NAME = "gatehouse.test"
# nginx's address as the instances see it: the only trusted proxy.
GATEWAY_ADDRESS = "127.0.0.1"
ANONYMOUS_BUDGET = 4
ME = "/api/v1/users/me"
PLACEHOLDER = re.compile(r"__[A-Z0-9_]+__")
# The gateway's own error answers' envelope, as Gatehouse's.
ENVELOPE_KEYS = {"code", "message", "details", "timestamp", "request_id"}
# Headers that differ between two answers of the same file by nature, and nginx's name
# (`server_tokens off` leaves out its version only; Gatehouse sends no Server header).
PER_ANSWER = {"date", "etag", "x-request-id", "connection", "keep-alive", "server"}


def placeholders(text: str) -> set[str]:
    """The placeholders in the config's directives (comments name them too)."""
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return {found for line in lines for found in PLACEHOLDER.findall(line)}


# --- The stack --------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for the server name and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def render(
    directory: Path, https_port: int, http_port: int, upstreams: list[int], cert: Path, key: Path
) -> tuple[Path, dict[str, str]]:
    """The real config with loopback values, inside an nginx.conf of the test's own."""
    values = {
        "__SERVER_NAME__": SERVER_NAME,
        "__TLS_CERTIFICATE__": str(cert),
        "__TLS_CERTIFICATE_KEY__": str(key),
        "__WEB_DIST__": str(DIST),
        **{f"__GATEHOUSE_{n}__": f"127.0.0.1:{port}" for n, port in enumerate(upstreams, 1)},
    }
    text = CONF.read_text()
    assert placeholders(text) == set(values), "the test fills every placeholder, no other"
    moved = {
        "listen 443 ": f"listen 127.0.0.1:{https_port} ",
        "listen [::]:443 ": f"listen [::1]:{https_port} ",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": f"listen [::1]:{http_port};",
        "/var/log/nginx/": f"{directory}/",
    }
    for old, new in {**values, **moved}.items():
        assert old in text, old
        text = text.replace(old, new)
    assert not placeholders(text)
    (directory / "gatehouse.conf").write_text(text)
    # As root, nginx's workers would otherwise switch to `nobody`, who cannot read here.
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = " ".join(
        f"{kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    main.write_text(
        f"""daemon off;
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    {temp}
    include {directory}/gatehouse.conf;
}}
"""
    )
    return main, values


@dataclass
class Instance:
    name: str
    port: int
    env: dict[str, str]
    directory: Path
    server: ServerProcess | None = None
    starts: int = 0
    # A start the test that stopped it did not wait for (the next test that needs this
    # instance does).
    starting: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.server is not None and self.server.proc.returncode is None

    @property
    def serving(self) -> bool:
        """Up and past its start (which a test may have left running)."""
        return self.alive and (self.starting is None or self.starting.done())

    async def start(self) -> None:
        """Until it answers /health (`server` is set at once: a start cancelled at the
        module's end still stops the process)."""
        self.starts += 1
        log = self.directory / f"{self.name}-{self.starts}.log"
        self.server = await start(self.env, log, self.port)
        await wait_healthy(self.server)

    def start_soon(self) -> None:
        self.starting = asyncio.create_task(self.start())

    async def started(self) -> None:
        if self.starting is not None:
            starting, self.starting = self.starting, None
            await starting

    async def terminate(self) -> None:
        """SIGTERM, as systemd stops a unit; until the process is gone."""
        await stop(self.server)

    async def kill(self) -> None:
        assert self.server is not None
        self.server.proc.send_signal(signal.SIGKILL)
        await self.server.proc.wait()

    async def logged(self, request_id: str) -> bool:
        """Whether this instance (any start of it) logged the request; its line comes
        once the answer is sent, so it is waited for a moment."""
        for _ in range(100):
            for log in self.directory.glob(f"{self.name}-*.log"):
                for line in log.read_text(errors="replace").splitlines():
                    if line.startswith("{") and json.loads(line).get("request_id") == request_id:
                        return True
            await asyncio.sleep(0.02)
        return False


@dataclass
class Served:
    """An answer through the gateway, and who made it: the instances tried in order
    (empty: nginx answered by itself)."""

    response: httpx.Response
    tried: list[str]

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def by(self) -> str | None:
        return self.tried[-1] if self.tried else None


@dataclass
class Gateway:
    https: str
    http: str
    ca: Path
    directory: Path
    instances: dict[str, Instance]
    runtime: Runtime
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def access_log(self) -> Path:
        return self.directory / "gatehouse.access.log"

    def live(self) -> Instance:
        """An instance that is up (a test may have killed the other)."""
        return next(instance for instance in self.instances.values() if instance.serving)

    def client(self, source: str) -> httpx.AsyncClient:
        """A client connecting from this loopback address, trusting the test's CA."""
        context = ssl.create_default_context(cafile=str(self.ca))
        transport = httpx.AsyncHTTPTransport(verify=context, local_address=source)
        client = httpx.AsyncClient(transport=transport, base_url=self.https, timeout=30)
        self.clients.append(client)
        return client

    def entries(self) -> dict[str, dict[str, Any]]:
        found = {}
        for line in self.access_log.read_text().splitlines():
            entry = json.loads(line)
            found[entry["request_id"]] = entry
        return found

    async def entry(self, request_id: str) -> dict[str, Any]:
        """The access log's line for that request (written just after the answer)."""
        for _ in range(100):
            entry = self.entries().get(request_id)
            if entry is not None:
                return entry
            await asyncio.sleep(0.02)
        raise AssertionError(f"no access log line for {request_id}")

    def tried(self, entry: dict[str, Any]) -> list[str]:
        by_address = {f"127.0.0.1:{i.port}": name for name, i in self.instances.items()}
        hops = [hop.strip() for hop in re.split(r"[,:]\s", entry["upstream"]) if hop.strip()]
        return [by_address.get(hop, hop) for hop in hops]

    async def send(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> Served:
        request_id = f"gw-{uuid.uuid4().hex}"
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        response = await client.request(method, path, headers=headers, **kwargs)
        return Served(response, self.tried(await self.entry(request_id)))

    async def user(self, role: Role, client: httpx.AsyncClient) -> tuple[uuid.UUID, str, str]:
        """A new user, logged in through the gateway: (id, email, bearer token)."""
        email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        async with self.runtime.unit_of_work() as uow:
            service = UserService(uow, self.runtime.settings.auth, self.runtime.hasher)
            user = await service.create(
                UserCreate(email=email, name="Gateway Person", password=PASSWORD, role=role)
            )
        return user.id, email, await self.login(client, email)

    async def login(self, client: httpx.AsyncClient, email: str, **headers: str) -> str:
        login = await client.post(
            "/api/v1/auth/token", json={"username": email, "password": PASSWORD}, headers=headers
        )
        assert login.status_code == 200, login.text
        token: str = login.json()["access_token"]
        return token

    async def in_rotation(self) -> None:
        """Both instances up, and nginx sending requests to both again (an instance
        that failed gets none for `fail_timeout`)."""
        for instance in self.instances.values():
            await instance.started()
            if not instance.alive:
                await instance.start()
        client = self.client("127.0.0.250")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        seen: set[str | None] = set()
        while not set(self.instances) <= seen:
            assert loop.time() < deadline, f"nginx sends no request to {set(self.instances) - seen}"
            served = await self.send(client, "GET", "/health")
            assert served.status == 200, served.response.text
            seen.add(served.by)
            await asyncio.sleep(0.05)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def nginx() -> str:
    return tool("nginx", installed_by="nginx", also=("/usr/sbin/nginx",))


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database of the module's own, shared by both instances."""
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(services.admin_sql(f'CREATE DATABASE "{name}"'))
    url = make_url(services.POSTGRES_ADMIN_URL).set(database=name)
    try:
        migrate.upgrade(url.render_as_string(hide_password=False))
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def gateway(
    nginx: str,
    database: str,
    redis_url: str,
    signing_key_pem: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Gateway]:
    if not (DIST / "index.html").is_file() or not (DIST / "admin" / "index.html").is_file():
        services.skip_suite("nginx gateway", "the web apps are not built (make web)")
    directory = tmp_path_factory.mktemp("gateway")
    prefix = f"gatehouse-test-{uuid.uuid4().hex[:12]}:"
    audit_key = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    # As in production (GATEHOUSE_ENV=production checks what it must), with the lowest
    # bcrypt cost production accepts and budgets a test can spend.
    env |= {
        "GATEHOUSE_ENV": "production",
        "GATEHOUSE_DATA_DIR": str(directory / "data"),
        "GATEHOUSE_DATABASE_URL": database,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_AUDIT_KEY": audit_key,
        # Production's other keys (nothing here backs up or stores a secret).
        "GATEHOUSE_BACKUP_KEY": str(x25519.Identity.generate()),
        "GATEHOUSE_ENCRYPTION_KEYS": f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        # The admin these tests act as has no second factor: MFA is not what they test.
        "GATEHOUSE_MFA_REQUIRED_ROLES": "",
        "GATEHOUSE_BCRYPT_ROUNDS": "10",
        "GATEHOUSE_REDIS_URL": redis_url,
        "GATEHOUSE_REDIS_PREFIX": prefix,
        "GATEHOUSE_TRUSTED_PROXIES": f"{GATEWAY_ADDRESS}/32",
        "GATEHOUSE_PUBLIC_URL": f"https://{SERVER_NAME}",
        "GATEHOUSE_WEB_DIR": str(DIST),
        "GATEHOUSE_RATE_LIMIT_ANONYMOUS": f"{ANONYMOUS_BUDGET}/hour",
        "GATEHOUSE_RATE_LIMIT_AUTHENTICATED": "100000/hour",
        "GATEHOUSE_RATE_LIMIT_LOGIN": "1000/hour",
    }
    instances = {
        name: Instance(name, free_port(), env, directory) for name in ("A", "B")
    }  # fmt: skip
    https_port, http_port = free_port(), free_port()
    cert, key = self_signed(directory)
    main, _ = render(
        directory, https_port, http_port, [i.port for i in instances.values()], cert, key
    )
    settings = make_settings(
        database,
        directory / "data",
        signing_key_pem,
        bcrypt_rounds=10,
        audit_key=audit_key,
        redis_url=redis_url,
        redis_prefix=prefix,
    )
    runtime = Runtime.create(settings)
    # The users it makes ask for the events relay: the instances' sweep runs it.
    runtime.use_jobs(LeftForSweep())
    proc = None
    gateway = Gateway(
        f"https://127.0.0.1:{https_port}",
        f"http://127.0.0.1:{http_port}",
        cert,
        directory,
        instances,
        runtime,
    )
    try:
        await asyncio.gather(*(instance.start() for instance in instances.values()))
        with (directory / "nginx.out").open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                nginx, "-p", str(directory), "-c", str(main), "-e", str(directory / "error.log"),
                stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
            )  # fmt: skip
        for _ in range(200):
            if proc.returncode is not None or await asyncio.to_thread(_listening, https_port):
                break
            await asyncio.sleep(0.05)
        if proc.returncode is not None or not _listening(https_port):
            errors = (directory / "nginx.out").read_text() + (directory / "error.log").read_text()
            pytest.fail(f"nginx did not start:\n{errors}")
        yield gateway
    finally:
        for client in gateway.clients:
            await client.aclose()
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        for instance in instances.values():
            if instance.starting is not None:
                # No test is left to wait for it.
                instance.starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await instance.starting
            await stop(instance.server)
        await runtime.close()
        await drop_keys(redis_url, prefix)


@pytest.fixture
async def balanced(gateway: Gateway) -> None:
    """Both instances taking requests (a test before this one may have killed or
    restarted one); the tests without it need the gateway and one instance."""
    await gateway.in_rotation()


# --- The file itself --------------------------------------------------------------------


def test_every_placeholder_is_marked_and_explained() -> None:
    text = CONF.read_text()
    found = placeholders(text)
    assert found == {
        "__SERVER_NAME__",
        "__TLS_CERTIFICATE__",
        "__TLS_CERTIFICATE_KEY__",
        "__GATEHOUSE_1__",
        "__GATEHOUSE_2__",
        "__WEB_DIST__",
    }
    header = text.split("# --- The instances", 1)[0]
    for name in found:
        assert f"#   {name}" in header or f", {name}" in header, f"{name} is not explained"


def test_the_gateway_body_limit_and_error_codes_are_gatehouses() -> None:
    """The values the file copies from Gatehouse are Gatehouse's."""
    text = CONF.read_text()
    defaults = {name: f.default for name, f in ServerSettings.model_fields.items()}
    assert defaults["max_body_bytes"] == 1024 * 1024
    assert "client_max_body_size 1m;" in text
    assert f"limit of {defaults['max_body_bytes']} bytes" in text
    keepalive = re.search(r"keepalive_timeout (\d+)s;", text)
    assert keepalive is not None
    assert int(keepalive[1]) < defaults["keepalive_timeout_seconds"]
    for status in (403, 404, 405, 413):
        code, _ = HTTP_CODES[status]
        assert re.search(rf"{status}\s+{code};", text), (status, code)


# --- Failover and rolling restarts --------------------------------------------------------


@dataclass
class Traffic:
    """Clients sending GETs through the gateway until told to stop: the health check,
    an authenticated read and an admin's audited read, in turn."""

    gateway: Gateway
    reads: list[tuple[str, dict[str, str]]]
    answers: list[tuple[str, float, int | str]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, client: httpx.AsyncClient) -> None:
        loop = asyncio.get_running_loop()
        turn = 0
        while not self.stopping.is_set():
            path, headers = self.reads[turn % len(self.reads)]
            turn += 1
            request_id = f"gw-{uuid.uuid4().hex}"
            started = loop.time()
            try:
                response = await client.get(path, headers={**headers, "X-Request-ID": request_id})
                outcome: int | str = response.status_code
            except httpx.HTTPError as exc:
                outcome = repr(exc)
            self.answers.append((request_id, started, outcome))

    async def until(self, count: int) -> None:
        """Until `count` more answers came."""
        target = len(self.answers) + count
        while len(self.answers) < target:  # noqa: ASYNC110 (polled: the clients append)
            await asyncio.sleep(0.01)

    async def served_by(self, name: str, since: float) -> None:
        """Until a request sent after `since` was answered by that instance."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            entries = self.gateway.entries()
            for request_id, started, outcome in self.answers:
                entry = entries.get(request_id)
                if (
                    started > since
                    and outcome == 200
                    and entry is not None
                    and self.gateway.tried(entry)[-1:] == [name]
                ):
                    return
            assert loop.time() < deadline, f"nginx sends nothing to {name} again"
            await asyncio.sleep(0.1)

    def failures(self) -> list[tuple[str, int | str]]:
        return [(rid, outcome) for rid, _, outcome in self.answers if outcome != 200]


async def _traffic(gateway: Gateway) -> Traffic:
    client = gateway.client("127.0.0.31")
    _, _, admin = await gateway.user(Role.admin, client)
    bearer = {"Authorization": f"Bearer {admin}"}
    return Traffic(
        gateway,
        [("/health", {}), (ME, bearer), ("/api/v1/audit-events?limit=5", bearer)],
    )


@pytest.mark.usefixtures("balanced")
async def test_a_rolling_restart_loses_no_request(gateway: Gateway) -> None:
    traffic = await _traffic(gateway)
    clients = [gateway.client(f"127.0.0.{40 + n}") for n in range(2)]
    tasks = [asyncio.create_task(traffic.run(client)) for client in clients]
    loop = asyncio.get_running_loop()
    try:
        await traffic.until(10)
        for name in ("A", "B"):
            instance = gateway.instances[name]
            await instance.terminate()
            await traffic.until(5)  # served by the other one meanwhile
            await instance.start()  # returns once /health answers
            back = loop.time()
            # Only then the next one: nginx tries a failed instance again after
            # `fail_timeout`.
            await traffic.served_by(name, since=back)
        await traffic.until(10)
    finally:
        traffic.stopping.set()
        await asyncio.gather(*tasks)
    assert traffic.failures() == []
    assert len(traffic.answers) >= 30


@pytest.mark.usefixtures("balanced")
async def test_a_killed_instance_loses_no_get_it_had_not_begun_to_answer(gateway: Gateway) -> None:
    traffic = await _traffic(gateway)
    a, b = gateway.instances["A"], gateway.instances["B"]
    clients = [gateway.client(f"127.0.0.{32 + n}") for n in range(3)]
    tasks = [asyncio.create_task(traffic.run(client)) for client in clients]
    try:
        await traffic.until(15)
        await a.kill()
        killed_at = asyncio.get_running_loop().time()
        await traffic.until(45)
    finally:
        traffic.stopping.set()
        await asyncio.gather(*tasks)
    entries = {rid: await gateway.entry(rid) for rid, _, _ in traffic.answers}
    tried = {rid: gateway.tried(entry) for rid, entry in entries.items()}
    # The one loss nginx cannot prevent: an answer A had begun to send when it died (its
    # head passed on to the client, its body never written) cannot be sent again. Any
    # other request A had, or was sent, B answered.
    for rid, outcome in traffic.failures():
        assert (tried[rid], entries[rid]["upstream_status"]) == (["A"], "200"), (
            outcome,
            entries[rid],
        )
    assert len(traffic.failures()) <= len(clients)
    after = [tried[rid] for rid, started, _ in traffic.answers if started > killed_at]
    assert len(after) >= 30, after
    assert {hops[-1] for hops in after} == {"B"}, f"a request after the kill went to A: {after}"
    assert ["A", "B"] in tried.values(), f"nginx never tried A and then B: {tried}"
    assert b.alive
    a.start_soon()


# --- TLS, redirect, HSTS ----------------------------------------------------------------


def _handshake(port: int, ca: Path, version: ssl.TLSVersion) -> str | None:
    """The negotiated protocol, with the client offering `version` only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(ca))
    context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        # OpenSSL refuses old protocols client-side at its default security level:
        # lowered, so that the refusal seen is the server's.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        return tls.version()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_tls_1_2_and_1_3_only(gateway: Gateway) -> None:
    port = int(gateway.https.rsplit(":", 1)[1])
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert await asyncio.to_thread(_handshake, port, gateway.ca, version) == (
            "TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3"
        )
    for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        with pytest.raises(ssl.SSLError) as refused:
            await asyncio.to_thread(_handshake, port, gateway.ca, version)
        # The server's alert: the client did offer the old protocol.
        assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


async def test_plain_http_is_redirected_and_https_answers_carry_hsts(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.http) as plain:
        for method in ("GET", "POST"):
            response = await plain.request(
                method, "/login?next=%2Fprofile", headers={"Host": "evil.example"}
            )
            assert response.status_code == 301
            # The configured name, never the client's Host.
            assert response.headers["Location"] == f"https://{SERVER_NAME}/login?next=%2Fprofile"
            assert "strict-transport-security" not in response.headers

    client = gateway.client("127.0.0.2")
    for path in ("/health", "/", "/assets/nope.js", "/metrics"):
        served = await gateway.send(client, "GET", path)
        assert served.response.headers.get_list("Strict-Transport-Security") == [
            "max-age=31536000; includeSubDomains"
        ], path


# --- What nginx answers itself ------------------------------------------------------------


async def test_metrics_are_not_reachable_through_the_gateway(gateway: Gateway) -> None:
    client = gateway.client("127.0.0.2")
    for path in ("/metrics", "/metrics/", "//metrics", "/%6detrics", "/api/%2E%2E/metrics"):
        for method in ("GET", "HEAD"):
            # The whole URL: "//metrics" alone would name a host.
            served = await gateway.send(client, method, gateway.https + path)
            assert served.status == 404, (method, path)
            assert served.tried == [], f"{path} reached an instance"
    served = await gateway.send(client, "GET", "/metrics?format=text")
    error = served.response.json()["error"]
    assert set(error) == ENVELOPE_KEYS
    assert error["code"] == "NOT_FOUND"
    assert error["request_id"] == served.response.headers["X-Request-ID"]
    assert served.response.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    # Still there for a scraper on the instance's host.
    async with httpx.AsyncClient() as local:
        assert (await local.get(f"{gateway.live().url}/metrics")).status_code == 200


async def test_a_body_over_gatehouses_limit_is_refused_at_the_gateway(gateway: Gateway) -> None:
    client = gateway.client("127.0.0.9")
    limit = 1024 * 1024
    headers = {"Content-Type": "application/json"}
    at_limit = await gateway.send(
        client, "POST", "/api/v1/auth/token", content=b" " * limit, headers=headers
    )
    assert at_limit.by is not None, "a body at the limit reaches Gatehouse"
    assert at_limit.status != 413
    over = await gateway.send(
        client, "POST", "/api/v1/auth/token", content=b" " * (limit + 1), headers=headers
    )
    assert (over.status, over.tried) == (413, [])
    assert over.response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_the_web_apps_are_served_from_disk_with_gatehouses_headers(
    gateway: Gateway,
) -> None:
    assets = sorted(p.relative_to(DIST).as_posix() for p in (DIST / "assets").iterdir())
    script = next(name for name in assets if name.endswith(".js"))
    style = next(name for name in assets if name.endswith(".css"))
    paths = [
        "/",
        "/index.html",
        "/login",  # a client app route: its page
        "/admin",
        "/admin/",
        "/admin/users/42",  # an admin portal route: its page
        f"/{script}",
        f"/{style}",
        "/api-docs/swagger-ui.css",  # another file: an hour
    ]
    client = gateway.client("127.0.0.2")
    async with httpx.AsyncClient(base_url=gateway.live().url) as direct:
        for path in paths:
            for method in ("GET", "HEAD"):
                served = await gateway.send(client, method, path)
                assert served.tried == [], f"{path} was not served from disk"
                # As Gatehouse answers behind a gateway that ended TLS.
                own = await direct.request(method, path, headers={"X-Forwarded-Proto": "https"})
                assert served.status == own.status_code == 200, path
                theirs = {k: v for k, v in served.response.headers.items() if k not in PER_ANSWER}
                ours = {k: v for k, v in own.headers.items() if k not in PER_ANSWER}
                assert theirs == ours, path
                assert served.response.content == own.content, path
                assert "etag" in served.response.headers
                assert served.response.headers["X-Request-ID"]

    # A chunk that is not there: Gatehouse's 404, never a page.
    for path in ("/assets/gone-1234.js", "/admin/assets/gone-1234.js"):
        served = await gateway.send(client, "GET", path)
        assert served.status == 404
        assert served.by is not None
        assert served.response.json()["error"]["code"] == "NOT_FOUND"
    # Another method on a page: the 405 Gatehouse answers, in the same envelope.
    async with httpx.AsyncClient(base_url=gateway.live().url) as direct:
        own = await direct.post("/login")
    served = await gateway.send(client, "POST", "/login")
    assert served.status == own.status_code == 405
    assert served.response.json()["error"]["code"] == own.json()["error"]["code"]


async def test_request_ids_are_kept_or_made_once_for_both_logs(gateway: Gateway) -> None:
    client = gateway.client("127.0.0.2")

    async def through(request_id: str | None) -> tuple[str, str]:
        headers = {"X-Request-ID": request_id} if request_id is not None else {}
        response = await client.get("/health", headers=headers)
        assert response.status_code == 200
        answered = response.headers["X-Request-ID"]
        entry = await gateway.entry(answered)
        by = gateway.tried(entry)[-1]
        assert await gateway.instances[by].logged(answered), f"{by} logged no {answered}"
        return answered, by

    mine = f"client-trace.{uuid.uuid4().hex[:8]}:42"
    assert (await through(mine))[0] == mine
    for sent in (None, "not sane; has spaces", "x" * 129):
        made, _ = await through(sent)
        assert re.fullmatch(r"[0-9a-f]{32}", made), made  # nginx's $request_id
        assert sane_request_id(made) == made


# --- Client addresses, shared budgets, shared state --------------------------------------


@pytest.mark.usefixtures("balanced")
async def test_the_client_address_is_the_one_limited_and_audited(gateway: Gateway) -> None:
    first, second, third = (gateway.client(f"127.0.0.{n}") for n in (11, 12, 13))
    remaining = []
    servers = []
    for _ in range(ANONYMOUS_BUDGET):
        served = await gateway.send(first, "GET", "/api/v1/users")
        assert served.status == 401
        remaining.append(int(served.response.headers["X-RateLimit-Remaining"]))
        servers.append(served.by)
    # One budget over both instances, requests taking turns.
    assert remaining == list(range(ANONYMOUS_BUDGET - 1, -1, -1))
    assert set(servers) == {"A", "B"}, servers
    for spoof in ({}, {"X-Forwarded-For": "198.51.100.7"}):
        over = await gateway.send(first, "GET", "/api/v1/users", headers=spoof)
        assert over.status == 429, "a spoofed X-Forwarded-For escaped the budget"

    # Another client has its own budget: the key is not the gateway's address...
    served = await gateway.send(second, "GET", "/api/v1/users")
    assert served.status == 401
    assert served.response.headers["X-RateLimit-Remaining"] == str(ANONYMOUS_BUDGET - 1)
    # ...and naming the spent client in X-Forwarded-For spends nothing of its budget.
    served = await gateway.send(
        third, "GET", "/api/v1/users", headers={"X-Forwarded-For": "127.0.0.11"}
    )
    assert served.status == 401
    assert served.response.headers["X-RateLimit-Remaining"] == str(ANONYMOUS_BUDGET - 1)

    # The audit trail has the address nginx saw, not the one the client claimed.
    admin_client = gateway.client("127.0.0.14")
    _, _, admin = await gateway.user(Role.admin, admin_client)
    _, email, _ = await gateway.user(Role.user, admin_client)
    request_id = f"gw-login-{uuid.uuid4().hex}"
    await gateway.login(
        third, email, **{"X-Forwarded-For": "203.0.113.66", "X-Request-ID": request_id}
    )
    events = await admin_client.get(
        "/api/v1/audit-events",
        params={"request_id": request_id},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert events.status_code == 200, events.text
    [event] = events.json()["items"]
    assert event["action"] == "auth.login"
    assert event["pii"]["ip"] == "127.0.0.13"


async def _refused_on_the_other(
    gateway: Gateway, done: Served, next_request: Callable[[], Awaitable[Served]]
) -> None:
    """The next requests, until one reached the instance the change was not made on, are
    all refused."""
    assert done.by is not None
    for _ in range(4):
        served = await next_request()
        assert served.status == 401, (served.by, served.response.text)
        if served.by != done.by:
            return
    raise AssertionError(f"every request went to {done.by}")


@pytest.mark.usefixtures("balanced")
async def test_a_logout_or_role_change_on_one_instance_holds_on_the_other(
    gateway: Gateway,
) -> None:
    client = gateway.client("127.0.0.21")
    _, _, admin = await gateway.user(Role.admin, client)
    victim_id, email, token = await gateway.user(Role.readonly, client)

    async def me(bearer: str) -> Served:
        return await gateway.send(client, "GET", ME, headers={"Authorization": f"Bearer {bearer}"})

    # Both instances have seen (and cached) the session.
    assert {(await me(token)).by for _ in range(4)} == {"A", "B"}
    changed = await gateway.send(
        client,
        "PATCH",
        f"/api/v1/users/{victim_id}",
        json={"role": "user"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert changed.status == 200, changed.response.text
    await _refused_on_the_other(gateway, changed, lambda: me(token))

    token = await gateway.login(client, email)
    answers = [await me(token) for _ in range(4)]
    assert {(s.by, s.status, s.response.json()["role"]) for s in answers} == {
        ("A", 200, "user"),
        ("B", 200, "user"),
    }
    logout = await gateway.send(
        client, "POST", "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert logout.status == 204
    await _refused_on_the_other(gateway, logout, lambda: me(token))
