"""The OpenAPI document is whole (every `$ref` resolves, so generators such as the web
apps' openapi-typescript accept it) and web/openapi.json, the web apps' copy, is the one
the app serves today."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from httpx import AsyncClient

ROOT = Path(__file__).resolve().parents[2]
WEB_COPY = ROOT / "web" / "openapi.json"


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


async def test_every_reference_in_the_document_resolves(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    missing = []
    for ref in sorted(set(refs(document))):
        try:
            resolve(document, ref)
        except KeyError:
            missing.append(ref)
    assert missing == []
    # The token endpoint reads its body by hand; its grants are documented all the same.
    body = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    grants = [resolve(document, one["$ref"]) for one in body["application/json"]["schema"]["oneOf"]]
    assert {grant["title"] for grant in grants} == {"PasswordGrant", "RefreshGrant"}
    assert "username" in grants[0]["properties"] or "username" in grants[1]["properties"]


async def test_the_web_apps_copy_is_current(client: AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    committed = json.loads(WEB_COPY.read_text(encoding="utf-8"))
    assert committed == served, "run `make api-client` and commit web/"


async def test_the_document_declares_what_the_api_enforces(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["servers"] == [
        {"url": "/", "description": document["servers"][0]["description"]}
    ]
    assert document["info"]["license"] == {"name": "Apache-2.0", "identifier": "Apache-2.0"}
    schemas = document["components"]["schemas"]
    # Public operations say so; the others name the bearer scheme.
    public = document["paths"]["/api/v1/auth/register"]["post"]
    assert public["security"] == []
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["paths"]["/api/v1/users"]["get"]["security"] == [{"OAuth2PasswordBearer": []}]
    # PATCH refuses null: the schema offers none.
    patch = schemas["UserPatch"]
    assert patch["minProperties"] == 1
    assert all("anyOf" not in prop for prop in patch["properties"].values())
    for name in ("UserCreate", "RegisterRequest", "EmailRequest"):
        assert schemas[name]["properties"]["email"]["format"] == "email", name
        assert schemas[name]["properties"]["email"]["maxLength"] == 254, name
    for name, field in (("UserCreate", "password"), ("PasswordChange", "new_password")):
        password = schemas[name]["properties"][field]
        assert password["maxLength"] == 72
        assert "72 bytes" in password["description"]
    # Headers and queries are strings or absent, never null.
    for path in document["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                assert {"type": "null"} not in parameter["schema"].get("anyOf", []), parameter
    # Every example has what its schema requires (nulls included).
    audit = schemas["AuditEventRead"]
    for example in audit["examples"]:
        assert set(audit["required"]) <= set(example)
        assert "reason" in example
