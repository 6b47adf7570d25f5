"""Every migration can run while the previous version serves (docs/operations.md,
"Upgrading: migrations while the old version serves"): read in the SQL each one emits
on PostgreSQL (Alembic's offline mode, no database needed), no statement rewrites,
renames or drops what the running code uses, or holds writes on an existing table
while it reads the whole of it. A statement that must do one of these is listed in
ALLOWED with the reason it is safe.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest
from alembic import command

from gatehouse.db import migrate

# (revision, statement) → why it is safe while the previous version serves.
ALLOWED: dict[tuple[str, str], str] = {
    (
        "20261208_0009",
        "ALTER INDEX idx_users_live_role_id RENAME TO idx_users_live_role",
    ): "the replacement of an index, built CONCURRENTLY under a name of its own, takes "
    "the old one's name: no code names an index, and PostgreSQL renames an index "
    "under a SHARE UPDATE EXCLUSIVE lock, so reads and writes go on",
}

# Each (rule, pattern) matches a statement that is unsafe on a table the running code
# already uses; on a table the same migration creates, nothing can be waiting.
RULES: list[tuple[str, re.Pattern[str]]] = [
    ("drops a table", re.compile(r"^DROP TABLE\b")),
    ("drops a column", re.compile(r"\bDROP COLUMN\b")),
    ("renames", re.compile(r"\bRENAME\b")),
    ("changes a column's type (a rewrite)", re.compile(r"\bALTER COLUMN \S+ (SET DATA )?TYPE\b")),
    ("makes a column NOT NULL (a full scan, writes held)", re.compile(r"\bSET NOT NULL\b")),
    (
        "adds a NOT NULL column without a default (fails on rows, breaks old INSERTs)",
        re.compile(r"\bADD COLUMN\b(?!.*\bDEFAULT\b).*\bNOT NULL\b", re.DOTALL),
    ),
    (
        "builds an index without CONCURRENTLY (writes held for the whole build)",
        re.compile(r"^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)"),
    ),
    ("drops an index without CONCURRENTLY", re.compile(r"^DROP INDEX (?!CONCURRENTLY)")),
    (
        "adds a constraint that is checked on every row under a lock (use NOT VALID)",
        re.compile(r"\bADD CONSTRAINT\b(?!.*\bNOT VALID\b)", re.DOTALL),
    ),
]
_RUNNING = re.compile(r"^-- Running upgrade\s+(?:\S+\s+)?->\s+(\S+)$", re.MULTILINE)
_CREATED = re.compile(r"^CREATE TABLE (\w+)")
_TARGET = re.compile(r"^(?:ALTER TABLE|CREATE (?:UNIQUE )?INDEX(?: CONCURRENTLY)? \w+ ON) (\w+)")


@dataclass(frozen=True)
class Migration:
    revision: str
    statements: list[str]

    @property
    def created(self) -> set[str]:
        return {m[1] for s in self.statements if (m := _CREATED.match(s))}


def upgrade_sql() -> list[Migration]:
    """Each migration's upgrade, as the statements it sends to PostgreSQL."""
    config = migrate.alembic_config("postgresql+asyncpg://gatehouse@localhost/offline")
    output = io.StringIO()
    config.output_buffer = output
    command.upgrade(config, "base:head", sql=True)
    text = output.getvalue()
    marks = list(_RUNNING.finditer(text))
    assert marks, "no migration in the offline SQL"
    migrations = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end() : following.start() if following else len(text)]
        statements = [
            " ".join(statement.split())
            for statement in body.split(";\n")
            if statement.strip() and not statement.strip().startswith("--")
        ]
        migrations.append(Migration(mark[1], statements))
    return migrations


def problems(migration: Migration) -> list[str]:
    found = []
    for statement in migration.statements:
        target = _TARGET.match(statement)
        if target and target[1] in migration.created:
            continue  # a table of this migration's own: nobody uses it yet
        if (migration.revision, statement) in ALLOWED:
            continue
        for rule, pattern in RULES:
            if pattern.search(statement):
                found.append(f"{migration.revision}: {rule}: {statement}")
    return found


MIGRATIONS = upgrade_sql()


@pytest.mark.parametrize("migration", MIGRATIONS, ids=[m.revision for m in MIGRATIONS])
def test_the_migration_is_safe_while_the_previous_version_serves(migration: Migration) -> None:
    assert problems(migration) == []


def test_every_migration_file_is_read() -> None:
    files = list((migrate.ROOT / "migrations" / "versions").glob("*.py"))
    assert len(MIGRATIONS) == len(files)


def test_every_allowed_statement_is_still_emitted() -> None:
    """An allowance outlives nothing: each names a statement a migration sends."""
    emitted = {(m.revision, s) for m in MIGRATIONS for s in m.statements}
    assert set(ALLOWED) <= emitted


@pytest.mark.parametrize(
    ("statement", "rule"),
    [
        ("ALTER TABLE users DROP COLUMN name", "drops a column"),
        ("ALTER TABLE users RENAME COLUMN name TO full_name", "renames"),
        ("ALTER TABLE users ALTER COLUMN name TYPE TEXT", "changes a column's type"),
        ("ALTER TABLE users ALTER COLUMN name SET NOT NULL", "makes a column NOT NULL"),
        ("ALTER TABLE users ADD COLUMN tier VARCHAR(10) NOT NULL", "adds a NOT NULL column"),
        ("CREATE INDEX ix_users_name ON users (name)", "builds an index without"),
        ("DROP INDEX ix_users_name", "drops an index without"),
        ("DROP TABLE users", "drops a table"),
        (
            "ALTER TABLE sessions ADD CONSTRAINT fk_x FOREIGN KEY (user_id) REFERENCES users (id)",
            "adds a constraint",
        ),
    ],
)
def test_the_checker_flags_what_the_old_version_cannot_live_with(statement: str, rule: str) -> None:
    [problem] = problems(Migration("next", [statement]))
    assert rule in problem


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE outbox_events ADD COLUMN traceparent VARCHAR(128)",
        "ALTER TABLE users ADD COLUMN tier VARCHAR(10) DEFAULT 'free' NOT NULL",
        "ALTER TABLE audit_events ALTER COLUMN seq DROP NOT NULL",
        "CREATE INDEX CONCURRENTLY ix_users_name ON users (name)",
        "DROP INDEX CONCURRENTLY ix_users_name",
        "ALTER TABLE sessions ADD CONSTRAINT fk_x FOREIGN KEY (user_id) REFERENCES users (id) "
        "NOT VALID",
    ],
)
def test_the_checker_lets_the_expand_steps_through(statement: str) -> None:
    assert problems(Migration("next", [statement])) == []
