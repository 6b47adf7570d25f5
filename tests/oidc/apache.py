"""An Apache of a test's own with mod_auth_openidc in front of one protected page: the
config (written like the one docs/oidc.md shows, with loopback values), its start and
its stop."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

HTTPD = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODULES = Path(os.environ.get("APACHE2_MODULES", "/usr/lib/apache2/modules"))
# What the config needs beyond the core: an MPM, `Require`, the OpenID module, and
# mod_include + mod_dir for the protected page that echoes the claims.
NEEDED = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("dir_module", "mod_dir.so"),
    ("mime_module", "mod_mime.so"),
    ("include_module", "mod_include.so"),
    ("auth_openidc_module", "mod_auth_openidc.so"),
)
STARTUP_LIMIT = 20.0

# The protected page: what mod_auth_openidc hands the application, echoed by mod_include
# from the request's environment (OIDC_CLAIM_<claim>; REMOTE_USER = OIDCRemoteUserClaim).
PROTECTED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Protected</title></head>
<body>
<h1>Protected page</h1>
<p>Remote user: <span id="remote-user"><!--#echo var="REMOTE_USER" --></span></p>
<p>Email: <span id="email"><!--#echo var="OIDC_CLAIM_email" --></span></p>
<p>Name: <span id="name"><!--#echo var="OIDC_CLAIM_name" --></span></p>
<p>Role: <span id="role"><!--#echo var="OIDC_CLAIM_role" --></span></p>
<p>Subject: <span id="sub"><!--#echo var="OIDC_CLAIM_sub" --></span></p>
<p>Issuer: <span id="iss"><!--#echo var="OIDC_CLAIM_iss" --></span></p>
</body></html>
"""
LOGGED_OUT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head>
<body><h1>Signed out</h1></body></html>
"""


def missing() -> str | None:
    """Why this machine cannot run the Apache relying party, or None."""
    if not Path(HTTPD).is_file():
        return f"Apache is not installed at {HTTPD} (`make oidc-rp-tools` installs it, as root)"
    absent = [name for _, name in NEEDED if not (MODULES / name).is_file()]
    if absent:
        return f"Apache modules missing in {MODULES}: {', '.join(absent)} (`make oidc-rp-tools`)"
    return None


@dataclass
class ApacheSite:
    directory: Path
    port: int
    client_id: str
    client_secret: str
    issuer: str

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/protected/callback"

    @property
    def protected_url(self) -> str:
        return f"{self.origin}/protected/"

    @property
    def logged_out_url(self) -> str:
        return f"{self.origin}/loggedout.html"

    @property
    def logout_url(self) -> str:
        return f"{self.redirect_uri}?{httpx.QueryParams(logout=self.logged_out_url)}"

    @property
    def config(self) -> Path:
        return self.directory / "apache2.conf"

    def write(self) -> Path:
        """The config, the protected page and the logged-out page, in the directory."""
        htdocs = self.directory / "htdocs"
        (htdocs / "protected").mkdir(parents=True, exist_ok=True)
        (htdocs / "protected" / "index.html").write_text(PROTECTED_PAGE)
        (htdocs / "loggedout.html").write_text(LOGGED_OUT_PAGE)
        modules = "\n".join(f"LoadModule {name} {MODULES / file}" for name, file in NEEDED)
        self.config.write_text(
            f"""# Written by tests/oidc/apache.py: one site, one protected directory.
ServerRoot {self.directory}
PidFile {self.directory}/apache2.pid
Listen 127.0.0.1:{self.port}
ServerName 127.0.0.1:{self.port}
ErrorLog {self.directory}/error.log
LogLevel warn auth_openidc:info
{modules}
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 32
TypesConfig /dev/null
AddType text/html .html
DocumentRoot {htdocs}
DirectoryIndex index.html
<Directory {htdocs}>
    Require all granted
</Directory>

# The relying party: Gatehouse's discovery document gives every endpoint and the keys.
OIDCProviderMetadataURL {self.issuer}/.well-known/openid-configuration
OIDCClientID {self.client_id}
OIDCClientSecret {self.client_secret}
OIDCProviderTokenEndpointAuth client_secret_basic
OIDCRedirectURI {self.redirect_uri}
OIDCCryptoPassphrase {secrets.token_urlsafe(32)}
OIDCScope "openid email profile roles"
OIDCPKCEMethod S256
OIDCRemoteUserClaim email
OIDCPassClaimsAs environment
OIDCCookieSameSite On
# After a logout, only this site's own pages may be the destination.
OIDCRedirectURLsAllowed ^{self.origin}/

<Location /protected/>
    AuthType openid-connect
    Require valid-user
    Options +Includes
    SetOutputFilter INCLUDES
</Location>
"""
        )
        return self.config

    def check(self) -> subprocess.CompletedProcess[str]:
        """`apache2 -t` on the config: the syntax and every directive known."""
        return subprocess.run(
            [HTTPD, "-t", "-f", str(self.config)], capture_output=True, text=True, timeout=30
        )


@dataclass
class RunningApache:
    site: ApacheSite
    proc: asyncio.subprocess.Process

    def log(self) -> str:
        path = self.site.directory / "error.log"
        out = (self.site.directory / "apache2.out").read_text(errors="replace")
        return out + (path.read_text(errors="replace") if path.exists() else "")


async def start(site: ApacheSite) -> RunningApache:
    """Apache in the foreground on the site's port, once it answers.

    No `User`: as root, Apache's children keep the starting user (the test's directory
    is readable by it alone); Apache refuses `User root` outright."""
    site.write()
    with (site.directory / "apache2.out").open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            HTTPD, "-f", str(site.config), "-DFOREGROUND",
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    running = RunningApache(site, proc)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_LIMIT
    async with httpx.AsyncClient(timeout=2) as client:
        while loop.time() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"apache2 exited ({proc.returncode}):\n{running.log()}")
            try:
                await client.get(f"{site.origin}/loggedout.html")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            return running
    await stop(running)
    raise RuntimeError(f"apache2 did not answer within {STARTUP_LIMIT}s:\n{running.log()}")


async def stop(running: RunningApache | None) -> None:
    if running is None or running.proc.returncode is not None:
        return
    running.proc.terminate()
    try:
        await asyncio.wait_for(running.proc.wait(), 20)
    except TimeoutError:
        running.proc.kill()
        await running.proc.wait()
