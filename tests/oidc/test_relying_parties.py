"""The OpenID provider with real relying parties, not only our own code: a live
`gatehouse serve` (a fresh SQLite database; PostgreSQL too for the Node and Python
clients) logged in to by

- panva's openid-client (Node): tests/oidc/rp/openid_client.mjs;
- Authlib (Python), a confidential web client, with client_secret_basic and _post;
- oidc-client-ts in Chromium, a public single-page app: tests/oidc/rp/spa;
- Apache's mod_auth_openidc in front of a protected page, visited by Chromium.

Each relying party checks what it checks (state, nonce, PKCE, the ID token's signature
and claims, `iss` in the response); the tests assert on what it saw. Without node,
the npm packages (`make oidc-rp-install`), Chromium or Apache (`make oidc-rp-tools`) a
suite is skipped loudly (a failure under REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

# Authlib ships no type information.
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy.engine import make_url

from gatehouse.db import migrate
from tests import services
from tests.oidc import apache
from tests.processes import ROOT, ServerProcess, serve, stop
from tests.redis_server import free_port
from tests.smtp import SmtpServer

# One worker runs the module (`make test` distributes by group): each provider starts
# once for every relying party.
pytestmark = pytest.mark.xdist_group("oidc-relying-parties")

RP = Path(__file__).parent / "rp"
WEB = ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "river stone lantern 42"
USER_EMAIL = "ada@example.com"
USER_NAME = "Ada Lovelace"
USER_PASSWORD = "analytical engine 1843"
NODE_LIMIT = 120
SCOPES_ALL = ["openid", "profile", "email", "offline_access", "roles"]


# --- what this machine has ------------------------------------------------------------


def _node_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    for package in ("openid-client", "oidc-client-ts"):
        if not (RP / "node_modules" / package).is_dir():
            return f"tests/oidc/rp/node_modules/{package} is missing (make oidc-rp-install)"
    return None


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (make browser)"
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        return "web/node_modules is missing (make web)"
    if not (WEB / "dist" / "index.html").is_file():
        return "the client app is not built (make web)"
    return None


def _need(name: str, *reasons: str | None) -> None:
    reason = next((r for r in reasons if r is not None), None)
    if reason is not None:
        services.skip_suite(name, reason)


# --- the provider -----------------------------------------------------------------------


@dataclass
class Provider:
    server: ServerProcess
    store: str
    # The single-page app's origin is allowed by CORS (its scripts call the provider).
    spa_port: int
    admin_token: str
    user: dict[str, Any]

    @property
    def url(self) -> str:
        return self.server.url

    async def register(self, **fields: Any) -> dict[str, Any]:
        """A client through the admin API: its fields, with `client_secret` if any."""
        body = {"name": f"RP {uuid.uuid4().hex[:8]}"} | fields
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            answer = await http.post(
                "/api/v1/clients",
                json=body,
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
        assert answer.status_code == 201, answer.text
        client: dict[str, Any] = answer.json()
        return client

    def log_tail(self) -> str:
        return self.server.output()[-6000:]


def _server_env(
    directory: Path, url: str, database_url: str, smtp: SmtpServer, spa_port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        # The issuer: what every relying party finds in the discovery document.
        "GATEHOUSE_PUBLIC_URL": url,
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DATA_DIR": str(directory / "data"),
        "GATEHOUSE_DATABASE_URL": database_url,
        "GATEHOUSE_WEB_DIR": str(WEB / "dist"),
        "GATEHOUSE_ADMIN_EMAIL": ADMIN_EMAIL,
        "GATEHOUSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEHOUSE_MFA_REQUIRED_ROLES": "",
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_SMTP_HOST": smtp.host,
        "GATEHOUSE_SMTP_PORT": str(smtp.port),
        "GATEHOUSE_SMTP_SECURITY": "none",
        "GATEHOUSE_LOG_FORMAT": "json",
        "GATEHOUSE_CORS_ORIGINS": f"http://127.0.0.1:{spa_port}",
        # Every login of the module comes from 127.0.0.1; the limits are tested elsewhere.
        "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
    }
    return env


async def _start_provider(
    directory: Path, database_url: str, store: str, smtp: SmtpServer
) -> Provider:
    port, spa_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = _server_env(directory, url, database_url, smtp, spa_port)
    await asyncio.to_thread(migrate.upgrade, database_url)
    server = await serve(env, directory / "server.log", port)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            login = await http.post(
                "/api/v1/auth/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            made = await http.post(
                "/api/v1/users",
                json={"email": USER_EMAIL, "name": USER_NAME, "password": USER_PASSWORD},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert made.status_code == 201, made.text
    except BaseException:
        await stop(server)
        raise
    return Provider(server, store, spa_port, token, made.json())


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
async def sqlite_provider(
    tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> AsyncIterator[Provider]:
    directory = tmp_path_factory.mktemp("op-sqlite")
    provider = await _start_provider(
        directory, f"sqlite+aiosqlite:///{directory / 'gatehouse.db'}", "sqlite", smtp
    )
    try:
        yield provider
    finally:
        await stop(provider.server)


@pytest.fixture(scope="module")
async def postgres_provider(
    tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> AsyncIterator[Provider]:
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_test_{uuid.uuid4().hex[:10]}"
    await services.admin_sql(f'CREATE DATABASE "{name}"')
    url = make_url(services.POSTGRES_ADMIN_URL).set(database=name)
    provider: Provider | None = None
    try:
        directory = tmp_path_factory.mktemp("op-postgres")
        provider = await _start_provider(
            directory, url.render_as_string(hide_password=False), "postgres", smtp
        )
        yield provider
    finally:
        if provider is not None:
            await stop(provider.server)
        await services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def provider(request: pytest.FixtureRequest) -> Provider:
    """The provider on the embedded default (SQLite) and on PostgreSQL."""
    found: Provider = request.getfixturevalue(f"{request.param}_provider")
    return found


# --- running the Node relying parties ----------------------------------------------------


async def _node(
    script: str, scenario: str | None, config: dict[str, Any], provider: Provider
) -> dict[str, Any]:
    """Run a Node relying party with its JSON config; its JSON result, or the test fails
    with what it saw and the server's log (never the config: it holds secrets)."""
    args = [*([scenario] if scenario else []), json.dumps(config)]
    name = f"{script} {scenario}" if scenario else script
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env["CHROMIUM"] = CHROMIUM
    proc = await asyncio.create_subprocess_exec(
        "node", script, *args, cwd=RP, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), NODE_LIMIT)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        pytest.fail(f"{name} did not finish in {NODE_LIMIT}s:\n{out.decode()}\n{err.decode()}")
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(
            f"{name} printed no result (exit {proc.returncode}):\n{out.decode()}\n"
            f"{err.decode()}\n--- server log ---\n{provider.log_tail()}"
        )
    if not result.get("ok"):
        pytest.fail(
            f"{name} failed at step {result.get('step')!r}: "
            f"{json.dumps(result.get('error'), indent=2)}\nwhat it saw: "
            f"{json.dumps({k: v for k, v in result.items() if k != 'error'}, indent=2)[:6000]}\n"
            f"{err.decode(errors='replace')[-3000:]}\n--- server log ---\n{provider.log_tail()}"
        )
    return result


def _loopback_uri(path: str) -> str:
    """An address nobody listens on: openid-client and Authlib only read the redirect."""
    return f"http://127.0.0.1:{free_port()}{path}"


def _cookie_attributes(set_cookie: str) -> dict[str, str]:
    parts = [part.strip() for part in set_cookie.split(";")]
    return {k.lower(): v for k, _, v in (part.partition("=") for part in parts[1:])}


# --- openid-client ----------------------------------------------------------------------


async def test_openid_client(provider: Provider) -> None:
    _need("OIDC relying parties (node)", _node_missing())
    redirect_uri = _loopback_uri("/callback")
    logged_out = _loopback_uri("/logged-out")
    web = await provider.register(
        type="confidential",
        redirect_uris=[redirect_uri],
        post_logout_redirect_uris=[logged_out],
        scopes=SCOPES_ALL,
        grant_types=["authorization_code", "refresh_token"],
    )
    service = await provider.register(
        type="confidential", scopes=["roles"], grant_types=["client_credentials"]
    )
    issuer = provider.url
    run = await _node(
        "openid_client.mjs",
        None,
        {
            "issuer": issuer,
            "client_id": web["client_id"],
            "client_secret": web["client_secret"],
            "redirect_uri": redirect_uri,
            "post_logout_redirect_uri": logged_out,
            "email": USER_EMAIL,
            "password": USER_PASSWORD,
            "cc_client_id": service["client_id"],
            "cc_client_secret": service["client_secret"],
        },
        provider=provider,
    )
    user = provider.user

    discovery = run["discovery"]
    assert discovery["issuer"] == issuer
    assert discovery["authorization_endpoint"] == f"{issuer}/oauth2/authorize"
    assert discovery["token_endpoint"] == f"{issuer}/oauth2/token"
    assert discovery["end_session_endpoint"] == f"{issuer}/oauth2/end_session"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]

    # The provider's cookie, for its own endpoints only, not readable by scripts.
    cookie = _cookie_attributes(run["op_cookie"])
    assert cookie["path"] == "/oauth2"
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"

    # Not a trusted client: the person was asked once.
    assert run["consent_asked"] is True
    assert run["callback"]["params"]["iss"] == issuer
    assert set(run["callback"]["params"]) == {"code", "state", "iss"}

    tokens = run["tokens"]
    assert tokens["token_type"].lower() == "bearer"
    assert set(tokens["scope"].split()) == set(SCOPES_ALL)
    assert tokens["has_refresh_token"] is True
    access = tokens["access_token"]
    assert access["header"]["typ"] == "at+jwt"
    assert access["payload"]["aud"] == web["client_id"]
    assert access["payload"]["client_id"] == web["client_id"]
    assert access["payload"]["sub"] == user["id"]
    assert "sid" not in access["payload"]  # never a first-party token
    assert tokens["id_token_header"]["alg"] == "RS256"

    # What openid-client validated (signature, iss, aud, exp, nonce), as it read it.
    claims = run["id_token_claims"]
    assert claims["iss"] == issuer
    assert claims["aud"] == web["client_id"] or claims["aud"] == [web["client_id"]]
    assert claims["sub"] == user["id"]
    assert claims["email"] == USER_EMAIL
    assert claims["name"] == USER_NAME
    assert claims["role"] == "user"
    assert "pwd" in claims["amr"]
    assert isinstance(claims["auth_time"], int)
    assert claims["at_hash"]

    assert run["userinfo"] == {
        "sub": user["id"],
        "email": USER_EMAIL,
        "email_verified": claims["email_verified"],
        "name": USER_NAME,
        "role": "user",
    }
    introspection = run["introspection"]
    assert introspection["active"] is True
    assert introspection["client_id"] == web["client_id"]
    assert introspection["sub"] == user["id"]
    assert introspection["iss"] == issuer

    # The same browser again, prompt=none: no login, a narrower scope, no refresh token.
    assert run["silent"]["claims"]["sub"] == user["id"]
    assert run["silent"]["claims"]["auth_time"] == claims["auth_time"]
    assert run["silent"]["scope"].split() == ["openid", "email"]
    assert run["silent"]["has_refresh_token"] is False

    refreshed = run["refreshed"]
    assert refreshed["rotated"] is True
    assert refreshed["id_token_claims"]["sub"] == user["id"]
    assert "nonce" not in refreshed["id_token_claims"]
    assert refreshed["userinfo"]["email"] == USER_EMAIL
    assert set(run["narrowed"]["scope"].split()) == {"openid", "email", "offline_access"}
    assert set(run["narrowed"]["userinfo"]) == {"sub", "email", "email_verified"}

    after = run["after_revocation"]
    assert after["refresh"]["error"] == "invalid_grant", after["refresh"]
    assert after["userinfo"]["status"] == 401, after["userinfo"]
    assert after["introspection"] == {"active": False}

    logout = run["logout"]
    assert logout["status"] in (302, 303), logout
    assert logout["location"].startswith(logged_out), logout
    assert logout["state_matches"] is True
    assert any(
        c.startswith("gatehouse_op=") and "max-age=0" in c.lower() for c in logout["set_cookie"]
    ), logout["set_cookie"]
    assert run["after_logout"]["params"]["error"] == "login_required"
    assert run["after_logout"]["params"]["iss"] == issuer
    assert run["after_logout"]["error"]["error"] == "login_required"

    cc = run["client_credentials"]
    assert cc["scope"] == "roles"
    assert cc["has_refresh_token"] is False
    assert cc["has_id_token"] is False
    assert cc["access_token"]["payload"]["sub"] == service["client_id"]
    assert cc["access_token"]["payload"]["aud"] == service["client_id"]
    assert cc["introspection"]["active"] is True
    assert cc["introspection"]["client_id"] == service["client_id"]
    assert cc["introspection_by_other"] == {"active": False}


# --- Authlib ------------------------------------------------------------------------------


async def _authorize_as_browser(provider: Provider, url: str) -> str:
    """What a browser does between the authorization URL and the callback: log in (the
    client app's JSON login and the provider's cookie), follow the provider, give the
    consent asked for. The callback URL the provider sends it to."""
    async with httpx.AsyncClient(base_url=provider.url, timeout=10) as http:
        login = await http.post(
            "/api/v1/auth/token", json={"username": USER_EMAIL, "password": USER_PASSWORD}
        )
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        session = await http.post("/api/v1/oauth2/session", headers=bearer)
        assert session.status_code == 204, session.text
        target = url
        for _ in range(3):
            answer = await http.get(target)
            assert answer.status_code in (302, 303), answer.text
            location = answer.headers["location"]
            parts = urlsplit(location)
            if parts.path != "/consent" or (
                parts.netloc and parts.netloc != urlsplit(provider.url).netloc
            ):
                return location
            consent = await http.post(
                "/api/v1/oauth2/consent", json={"query": parts.query}, headers=bearer
            )
            assert consent.status_code == 200, consent.text
            target = consent.json()["redirect_to"]
    raise AssertionError("the provider kept sending the browser around")


def _id_token(
    token: dict[str, Any], keys: KeySet, *, issuer: str, client_id: str, nonce: str | None = None
) -> Any:
    """The ID token checked as Authlib's own OpenID client checks it: the signature by
    joserfc (Authlib's JOSE) against the provider's keys, then Authlib's CodeIDToken
    rules (iss, aud, exp, iat, nonce, azp, at_hash against the access token)."""
    decoded = jwt.decode(token["id_token"], keys, registry=JWSRegistry(algorithms=["RS256"]))
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate()
    # Optional for Authlib, promised by Gatehouse: the ID token is bound to its access token.
    assert claims["at_hash"]
    return claims


# Both ways of sending the secret on the embedded default; PostgreSQL once.
@pytest.mark.parametrize(
    ("provider", "auth_method"),
    [
        ("sqlite", "client_secret_basic"),
        ("sqlite", "client_secret_post"),
        ("postgres", "client_secret_basic"),
    ],
    indirect=["provider"],
)
async def test_authlib(provider: Provider, auth_method: str) -> None:
    redirect_uri = _loopback_uri("/auth/callback")
    web = await provider.register(
        type="confidential",
        redirect_uris=[redirect_uri],
        scopes=SCOPES_ALL,
        grant_types=["authorization_code", "refresh_token"],
    )
    async with httpx.AsyncClient(timeout=10) as http:
        discovery = (await http.get(f"{provider.url}/.well-known/openid-configuration")).json()
        keys = KeySet.import_key_set((await http.get(discovery["jwks_uri"])).json())

    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    async with AsyncOAuth2Client(
        client_id=web["client_id"],
        client_secret=web["client_secret"],
        token_endpoint_auth_method=auth_method,
        scope=" ".join(SCOPES_ALL),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=10,
    ) as rp:
        url, state = rp.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        query = parse_qs(urlsplit(url).query)
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        assert query["code_challenge"] == [expected.rstrip(b"=").decode()]
        callback = await _authorize_as_browser(provider, url)
        returned = parse_qs(urlsplit(callback).query)
        assert returned["state"] == [state]
        assert returned["iss"] == [discovery["issuer"]]  # RFC 9207: Authlib leaves it to us

        token = await rp.fetch_token(
            discovery["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
        )
        assert set(token["scope"].split()) == set(SCOPES_ALL)
        claims = _id_token(
            token, keys, issuer=discovery["issuer"], client_id=web["client_id"], nonce=nonce
        )
        assert claims["sub"] == provider.user["id"]
        assert claims["email"] == USER_EMAIL

        userinfo = (await rp.get(discovery["userinfo_endpoint"])).json()
        assert userinfo["sub"] == claims["sub"]
        assert userinfo["name"] == USER_NAME
        assert userinfo["role"] == "user"

        refreshed = await rp.refresh_token(
            discovery["token_endpoint"], refresh_token=token["refresh_token"]
        )
        assert refreshed["refresh_token"] != token["refresh_token"]
        again = _id_token(refreshed, keys, issuer=discovery["issuer"], client_id=web["client_id"])
        assert "nonce" not in again
        assert again["sub"] == claims["sub"]
        # Authlib now sends the new access token.
        assert (await rp.get(discovery["userinfo_endpoint"])).json()["sub"] == claims["sub"]


# --- oidc-client-ts in Chromium -----------------------------------------------------------


class _SpaFiles:
    """The single-page app's server: its page at every path, oidc-client-ts's browser
    build, and its settings."""

    def __init__(self, port: int, settings: dict[str, str]) -> None:
        files = {
            "/oidc-client-ts.min.js": (
                "text/javascript",
                (
                    RP / "node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js"
                ).read_bytes(),
            ),
            "/settings.js": (
                "text/javascript",
                f"window.SPA_SETTINGS = {json.dumps(settings)};".encode(),
            ),
        }
        page = ("text/html; charset=utf-8", (RP / "spa" / "index.html").read_bytes())

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kind, body = files.get(urlsplit(self.path).path, page)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _SpaFiles:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_oidc_client_ts_spa(sqlite_provider: Provider, tmp_path: Path) -> None:
    _need("OIDC relying parties (Chromium)", _node_missing(), _browser_missing())
    provider = sqlite_provider
    origin = f"http://127.0.0.1:{provider.spa_port}"
    spa = await provider.register(
        name="Dashboard SPA",
        type="public",
        redirect_uris=[f"{origin}/", f"{origin}/silent"],
        post_logout_redirect_uris=[f"{origin}/signed-out"],
        scopes=["openid", "profile", "email", "roles"],
        grant_types=["authorization_code"],
    )
    with _SpaFiles(provider.spa_port, {"authority": provider.url, "client_id": spa["client_id"]}):
        run = await _node(
            "browser.mjs",
            "spa",
            {
                "issuer": provider.url,
                "spa_url": f"{origin}/",
                "email": USER_EMAIL,
                "password": USER_PASSWORD,
                "artifacts": str(tmp_path),
            },
            provider=provider,
        )
    assert run["initial_status"] == "Not signed in"
    assert run["login_page"]["return_to"].startswith("/oauth2/authorize?")
    # Not trusted: the person is asked, on the consent page, in plain words.
    consent = run.get("consent_page", "")
    assert "Allow Dashboard SPA?" in consent, consent
    assert "See your email address" in consent, consent
    assert run["signed_in_status"] == "Signed in"
    profile = run["profile"]
    assert profile["sub"] == provider.user["id"]
    assert profile["iss"] == provider.url
    assert profile["aud"] == spa["client_id"]
    assert profile["email"] == USER_EMAIL
    assert profile["name"] == USER_NAME
    assert profile["role"] == "user"
    # The callback's code and state are gone from the address bar.
    assert run["spa_url_after_callback"] == f"{origin}/"
    # Renewal in a hidden iframe: the provider's cookie answers prompt=none, no login.
    assert run["renewal"]["status"] == "Renewed", run["renewal"]
    assert run["renewal"]["profile"]["sub"] == provider.user["id"]
    assert run["signed_out_status"] == "Signed out"
    assert run["login_after_signout"]["path"] == "/login"


# --- mod_auth_openidc -----------------------------------------------------------------------


def test_apache_config_is_valid(tmp_path: Path) -> None:
    """The generated config (the one docs/oidc.md shows) passes `apache2 -t`."""
    _need("OIDC relying parties (Apache)", apache.missing())
    site = apache.ApacheSite(
        tmp_path, free_port(), "gh_example", "ghcs_example", "http://127.0.0.1:1"
    )
    site.write()
    checked = site.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_mod_auth_openidc(sqlite_provider: Provider, tmp_path: Path) -> None:
    _need("OIDC relying parties (Apache)", apache.missing(), _node_missing(), _browser_missing())
    provider = sqlite_provider
    site = apache.ApacheSite(tmp_path, free_port(), "", "", provider.url)
    client = await provider.register(
        type="confidential",
        redirect_uris=[site.redirect_uri],
        post_logout_redirect_uris=[site.logged_out_url],
        scopes=["openid", "profile", "email", "roles"],
        grant_types=["authorization_code"],
        trusted=True,
    )
    site.client_id, site.client_secret = client["client_id"], client["client_secret"]
    running = await apache.start(site)
    try:
        run = await _node(
            "browser.mjs",
            "apache",
            {
                "issuer": provider.url,
                "protected_url": site.protected_url,
                "logout_url": site.logout_url,
                "logged_out_url": site.logged_out_url,
                "email": USER_EMAIL,
                "password": USER_PASSWORD,
                "artifacts": str(tmp_path),
            },
            provider=provider,
        )
    except BaseException:
        print(running.log())
        raise
    finally:
        await apache.stop(running)
    assert run["login_page"]["return_to"].startswith("/oauth2/authorize?")
    text = run["protected_text"]
    assert f"Remote user: {USER_EMAIL}" in text
    assert f"Email: {USER_EMAIL}" in text
    assert f"Name: {USER_NAME}" in text
    assert "Role: user" in text
    assert f"Issuer: {provider.url}" in text
    assert run["protected_again"] is True
    assert "Signed out" in run["logged_out_text"]
    assert run["login_after_logout"]["path"] == "/login"
