"""docs/api.md's error table lists exactly the (status, code) pairs the API can answer.

Collected from the code, not from a list kept by hand: every `GatehouseError` class
(after importing every gatehouse module), the exception handlers' codes for the
framework's HTTP errors, and every error a middleware answers itself (`send_error`:
the body guard, rate limits, an unexpected failure).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import gatehouse
from gatehouse.errors import CommandError, GatehouseError
from gatehouse.exception_handlers import HTTP_CODES, HTTP_FALLBACK

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# The status column's word for the fallback, which answers whatever status it was given.
ANY_OTHER = "other"

Pair = tuple[str, str]


def _modules() -> list[str]:
    return [
        info.name for info in pkgutil.walk_packages(gatehouse.__path__, f"{gatehouse.__name__}.")
    ]


def _subclasses(cls: type[GatehouseError]) -> set[type[GatehouseError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def domain_codes() -> set[Pair]:
    for name in _modules():
        importlib.import_module(name)
    # An operator command's errors are printed by the CLI; no route raises them.
    commands = _subclasses(CommandError)
    return {(str(cls.status), cls.code) for cls in _subclasses(GatehouseError) - commands}


def handler_codes() -> set[Pair]:
    answered = {(str(status), code) for status, (code, _) in HTTP_CODES.items()}
    return answered | {(ANY_OTHER, HTTP_FALLBACK[0])}


def middleware_codes() -> set[Pair]:
    """Every `send_error(send, status, code, ...)` call in the package, read from source:
    a middleware's own answer never passes through an exception class."""
    found: set[Pair] = set()
    for name in _modules():
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert spec.origin is not None, name
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called != "send_error":
                continue
            given = dict(zip(("send", "status", "code"), node.args, strict=False))
            given.update({kw.arg: kw.value for kw in node.keywords if kw.arg})
            status, code = given.get("status"), given.get("code")
            # A computed status or code would escape this test: name it as a literal.
            where = f"{name}:{node.lineno}: send_error needs a literal status and code"
            assert isinstance(status, ast.Constant), where
            assert isinstance(code, ast.Constant), where
            found.add((str(status.value), str(code.value)))
    assert found, "no send_error call found: has the middleware's helper been renamed?"
    return found


def documented_codes() -> list[Pair]:
    """The rows of the table under `## Errors` in docs/api.md."""
    text = API_DOC.read_text(encoding="utf-8")
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| *([0-9]{3}|" + ANY_OTHER + r") *\| *`([A-Z_]+)` *\|", section, re.M)
    assert rows, "no error table under ## Errors in docs/api.md"
    return [(status, code) for status, code in rows]


def answerable() -> set[Pair]:
    return domain_codes() | handler_codes() | middleware_codes()


def test_every_error_the_api_can_answer_is_in_the_table() -> None:
    missing = answerable() - set(documented_codes())
    assert not missing, f"add these (status, code) rows to docs/api.md's error table: {missing}"


def test_every_row_of_the_table_is_an_error_the_api_can_answer() -> None:
    documented = documented_codes()
    assert len(documented) == len(set(documented)), "a row of the error table is repeated"
    stale = set(documented) - answerable()
    assert not stale, f"docs/api.md documents errors the API never answers: {stale}"


def test_the_collection_sees_every_kind_of_source() -> None:
    # Guards the test itself: each source yields what it must, so an empty one cannot
    # pass for a complete one.
    assert ("409", "WEBHOOK_DISABLED") in domain_codes()  # a feature's own errors module
    assert ("400", "INVALID_TOKEN") in domain_codes()
    assert ("405", "METHOD_NOT_ALLOWED") in handler_codes()
    assert {("500", "INTERNAL_ERROR"), ("429", "RATE_LIMITED")} <= middleware_codes()
