"""Create the schema, or upgrade it in place, keeping every row.

Version 1 is schema.sql. Each later version is a list of statements in
MIGRATIONS, written in the MySQL dialect like schema.sql; SQLite gets them
through the same translation.
"""

from pacs_lite.clock import utc_now
from pacs_lite.db import split_statements, sqlite_ddl
from pacs_lite.resources import resource_path

# version -> statements that bring version - 1 up to it.
MIGRATIONS = {}

LATEST_VERSION = max([1, *MIGRATIONS])


def current_version(db):
    """Return the schema version of the database, 0 when it has no schema yet."""
    if "schema_version" not in db.table_names():
        return 0
    return db.query_value("SELECT MAX(version) FROM schema_version") or 0


def statements_for(db, script):
    """Return the statements of a MySQL-dialect script for this database."""
    if db.dialect == "sqlite":
        script = sqlite_ddl(script)
    return split_statements(script)


def init_db(db):
    """Create or upgrade the schema; return (version before, version after)."""
    before = current_version(db)
    if before > LATEST_VERSION:
        raise RuntimeError(
            f"the database has schema version {before}, newer than this pacs_lite knows ({LATEST_VERSION}); "
            "upgrade pacs_lite"
        )
    if before == 0:
        apply(db, 1, resource_path("schema.sql").read_text(encoding="utf-8"))
    for version in range(max(before, 1) + 1, LATEST_VERSION + 1):
        apply(db, version, ";\n".join(MIGRATIONS[version]))
    return before, LATEST_VERSION


def apply(db, version, script):
    """Run one version's statements and record it.

    MySQL commits each DDL statement by itself, so a failure part-way leaves
    the earlier statements applied; the version row is written last, and
    every statement of a migration must therefore be safe to run again.
    """
    with db.transaction():
        for statement in statements_for(db, script):
            db.execute(statement)
        if version == 1:
            db.execute("INSERT INTO sync_state (id, last_seq) VALUES (1, 0)")
        db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, utc_now()))
