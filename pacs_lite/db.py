"""Database connections for SQLite and MySQL/MariaDB, and the few places they differ.

SQL elsewhere is written once, with ``?`` placeholders; this module turns it
into pymysql's ``%s`` style. Rows come back as dicts in both dialects, and
DATETIME columns as naive UTC ``datetime`` objects.

Each thread keeps one open connection per database (waitress runs a fixed set
of threads): a new pymysql connection costs tens of milliseconds, a reused
one nothing. A reused connection is not pinged: if it died while idle (the
server restarted), its first statement fails, and it is reopened and the
statement run again, once.

MySQL connections run in autocommit mode: a read leaves no transaction open
(which would hold table locks) and costs no ROLLBACK. Writes go in
``Database.transaction()`` blocks. ``close_db`` ends a transaction left open
by an error and keeps the connection for the thread's next request.
"""

import datetime
import functools
import os
import re
import sqlite3
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass

import pymysql
from pymysql.constants import SERVER_STATUS
from flask import current_app, g

from pacs_lite.config import ConfigError

MMAP_SIZE = 1 << 40  # a SQLite file mapped whole, up to the most SQLite maps
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# MySQL errors meaning the database or its tables are gone (dropped, restored elsewhere): 1049, 1146.
MYSQL_SCHEMA_GONE = (1049, 1146)


class DatabaseUnavailable(Exception):
    """The database server cannot be reached or refused us."""


IntegrityError = (sqlite3.IntegrityError, pymysql.err.IntegrityError)
OperationalError = (sqlite3.OperationalError, pymysql.err.OperationalError, pymysql.err.InterfaceError)


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed DATABASE_URL."""

    dialect: str  # "sqlite" or "mysql"
    path: str = ""
    host: str = ""
    port: int = 3306
    user: str = ""
    password: str = ""
    database: str = ""
    unix_socket: str = ""

    def describe(self):
        """Say where the database is, without the password."""
        if self.dialect == "sqlite":
            return f"SQLite file {self.path}"
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"MySQL database {self.database!r} at {where} as {self.user!r}"


def parse_database_url(url):
    """Parse sqlite:///path or mysql://user:pass@host:port/db[?unix_socket=/path].

    :raises ConfigError: naming DATABASE_URL and the accepted forms.
    """
    forms = "use sqlite:////path/to/file.db or mysql://user:password@host:3306/database"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:////abs/file.db, sqlite:///C:/file.db, or sqlite:///file.db (relative to the instance folder).
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path.strip("/"):
            raise ConfigError(f"DATABASE_URL {url!r} has no file path: {forms}")
        return DatabaseUrl("sqlite", path=path)
    if parts.scheme in ("mysql", "mysql+pymysql", "mariadb"):
        query = urllib.parse.parse_qs(parts.query)
        database = parts.path.lstrip("/")
        try:
            port = parts.port or 3306
        except ValueError:
            raise ConfigError(f"DATABASE_URL has a bad port number: {forms}") from None
        if not database or "/" in database:
            raise ConfigError(f"DATABASE_URL names no database after the host: {forms}")
        unix_socket = query.get("unix_socket", [""])[0]
        if not parts.hostname and not unix_socket:
            raise ConfigError(f"DATABASE_URL names no host (or ?unix_socket=/path): {forms}")
        return DatabaseUrl(
            "mysql",
            host=parts.hostname or "localhost",
            port=port,
            user=urllib.parse.unquote(parts.username or ""),
            password=urllib.parse.unquote(parts.password or ""),
            database=urllib.parse.unquote(database),
            unix_socket=unix_socket,
        )
    raise ConfigError(f"DATABASE_URL {url!r} is not a database URL: {forms}")


def _adapt_datetime(value):
    """Store a datetime in SQLite as ISO text, to the second, without a zone."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _convert_datetime(value):
    """Read a SQLite DATETIME column back as a naive datetime."""
    return datetime.datetime.fromisoformat(value.decode())


def aggregated_datetime(value):
    """Return a DATETIME that went through MAX() or MIN() as a datetime: SQLite hands those back as text."""
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value


sqlite3.register_adapter(datetime.datetime, _adapt_datetime)
sqlite3.register_converter("DATETIME", _convert_datetime)


@functools.lru_cache(maxsize=1024)
def mysql_sql(sql):
    """Turn ? placeholders into pymysql's %s, escaping literal percent signs."""
    return sql.replace("%", "%%").replace("?", "%s")


class Database:
    """One open connection, with the same small API for both dialects."""

    def __init__(self, url):
        self.url = url
        self.dialect = url.dialect
        self.connection = self._connect()
        self.reused = False  # handed out again since its last statement: it may have died meanwhile

    def _connect(self):
        """Open the underlying DB-API connection."""
        try:
            if self.dialect == "sqlite":
                os.makedirs(os.path.dirname(os.path.abspath(self.url.path)), exist_ok=True)
                conn = sqlite3.connect(self.url.path, timeout=30, detect_types=sqlite3.PARSE_DECLTYPES)
                conn.row_factory = _dict_row
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                # Each waitress thread has its own connection: give each a useful page cache, and let the
                # operating system's file cache serve reads (mmap) instead of copying pages, for as much of the
                # file as SQLite maps (it caps the size asked: 2 GiB in Python's build). Pages past the map are
                # read into the page cache, one copy per connection.
                conn.execute("PRAGMA cache_size = -65536")
                conn.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
                return conn
            return pymysql.connect(
                host=self.url.host,
                port=self.url.port,
                user=self.url.user,
                password=self.url.password,
                database=self.url.database,
                unix_socket=self.url.unix_socket or None,
                charset="utf8mb4",
                cursorclass=pymysql.cursors.DictCursor,
                autocommit=True,
                connect_timeout=5,
                read_timeout=60,
                write_timeout=60,
                # TLS costs ~50 ms a connection and buys nothing on this machine.
                ssl_disabled=bool(self.url.unix_socket) or self.url.host in LOOPBACK_HOSTS,
                init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            )
        except OperationalError as e:
            raise DatabaseUnavailable(f"cannot open the {self.url.describe()}: {e}") from None

    def execute(self, sql, params=()):
        """Run one statement and return its cursor."""
        return self._run("execute", sql, tuple(params))

    def executemany(self, sql, rows):
        """Run one statement for each parameter tuple in rows."""
        rows = [tuple(row) for row in rows]
        if rows:
            self._run("executemany", sql, rows).close()

    def _run(self, method, sql, params):
        """Call a cursor method and return the cursor; reopen a reused connection that died while idle, once."""
        try:
            return self._run_once(method, sql, params)
        except DatabaseUnavailable:
            if not self.reused:
                raise
            self.reused = False
            self.close()
            self.connection = self._connect()
            return self._run_once(method, sql, params)
        finally:
            self.reused = False

    def _run_once(self, method, sql, params):
        """Call a cursor method in this dialect; a database that is gone raises DatabaseUnavailable."""
        cursor = self.connection.cursor()
        try:
            getattr(cursor, method)(mysql_sql(sql) if self.dialect == "mysql" else sql, params)
        except OperationalError as e:
            if self.dialect == "mysql" or "locked" not in str(e):
                raise DatabaseUnavailable(f"the {self.url.describe()} failed: {e}") from e
            raise
        except pymysql.err.ProgrammingError as e:
            if e.args and e.args[0] in MYSQL_SCHEMA_GONE:
                raise DatabaseUnavailable(
                    f"the {self.url.describe()} has lost its tables ({e.args[1]}); restore it or run init-db"
                ) from e
            raise
        return cursor

    def query(self, sql, params=()):
        """Return every row of a query as a list of dicts."""
        cursor = self.execute(sql, params)
        rows = cursor.fetchall()
        cursor.close()
        return list(rows)

    def query_one(self, sql, params=()):
        """Return the first row of a query as a dict, or None."""
        cursor = self.execute(sql, params)
        row = cursor.fetchone()
        cursor.close()
        return row

    def query_value(self, sql, params=()):
        """Return the first column of the first row, or None."""
        row = self.query_one(sql, params)
        return None if row is None else next(iter(row.values()))

    def insert(self, sql, params=()):
        """Run an INSERT and return the new row's id."""
        cursor = self.execute(sql, params)
        new_id = cursor.lastrowid
        cursor.close()
        return new_id

    def commit(self):
        """Commit the current transaction."""
        self.connection.commit()

    def rollback(self):
        """Roll back the current transaction."""
        self.connection.rollback()

    @contextmanager
    def transaction(self):
        """Commit the block's statements together, or none of them."""
        if self.dialect == "mysql":
            self.execute("BEGIN").close()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @property
    def in_transaction(self):
        """Tell whether a transaction is open on the connection."""
        if self.dialect == "mysql":
            return bool(self.connection.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)
        return self.connection.in_transaction

    def close(self):
        """Close the connection."""
        try:
            self.connection.close()
        except Exception:
            pass

    def upsert_sql(self, table, columns, key_columns, insert_only=(), added=()):
        """Return an INSERT that updates the row when its key exists already.

        The insert_only columns keep their stored value; the added ones get the new value added to it.
        """
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        others = [c for c in columns if c not in key_columns and c not in insert_only]
        new = "VALUES({})" if self.dialect == "mysql" else "excluded.{}"
        updates = ", ".join(f"{c} = {c} + {new.format(c)}" if c in added else f"{c} = {new.format(c)}"
                            for c in others)
        if self.dialect == "mysql":
            return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {updates}"
        keys = ", ".join(key_columns)
        return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({keys}) DO UPDATE SET {updates}"

    def drop_index(self, name, table):
        """Drop an index (MySQL names its table, SQLite does not)."""
        if self.dialect == "mysql":
            self.execute(f"DROP INDEX {name} ON {table}")
        else:
            self.execute(f"DROP INDEX {name}")

    def table_names(self):
        """Return the names of the tables in this database."""
        if self.dialect == "mysql":
            rows = self.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()")
        else:
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row["name"] for row in rows}


def _dict_row(cursor, row):
    """Build a dict from a SQLite row."""
    return {column[0]: value for column, value in zip(cursor.description, row)}


def sqlite_ddl(mysql_ddl):
    """Derive SQLite DDL from the MySQL schema: drop table options, adapt AUTO_INCREMENT keys."""
    ddl = re.sub(r"\)\s*ENGINE=[^;]*(;|$)", r")\1", mysql_ddl)
    return ddl.replace("BIGINT AUTO_INCREMENT PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")


def split_statements(script):
    """Split a SQL script into statements, dropping -- comments."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@contextmanager
def exclusive_lock(url, name):
    """Hold a lock named name across processes for the block; yield False when another holder has it.

    MySQL: GET_LOCK on a connection of its own (freed if the process dies).
    SQLite: an OS lock on a file beside the database (likewise).
    """
    parsed = parse_database_url(url)
    if parsed.dialect == "mysql":
        db = Database(parsed)
        try:
            got = db.query_value("SELECT GET_LOCK(?, 0)", (name,)) == 1
            yield got
            if got:
                db.query_value("SELECT RELEASE_LOCK(?)", (name,))
        finally:
            db.close()
        return
    with open(f"{parsed.path}.{name}.lock", "a+b") as lock_file:
        got = _lock_file(lock_file)
        yield got


def _lock_file(lock_file):
    """Take a non-blocking OS lock on an open file; tell whether we got it. Closing the file frees it."""
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(lock_file.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


_thread_connections = threading.local()


def connect(url):
    """Return this thread's open connection to the database at url, opening one if needed."""
    pool = _thread_connections.__dict__.setdefault("by_url", {})
    db = pool.get(url)
    if db is not None:
        db.reused = True
        return db
    db = Database(parse_database_url(url))
    pool[url] = db
    return db


def forget_thread_connections():
    """Close every connection this thread keeps (for tests and shutdown)."""
    pool = _thread_connections.__dict__.setdefault("by_url", {})
    for db in pool.values():
        db.close()
    pool.clear()


def get_db():
    """Return the database connection of the current request or command."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE_URL"])
    return g.db


def close_db(exc=None):
    """End a transaction the request left open; the connection stays open for the thread."""
    db = g.pop("db", None)
    if db is not None:
        try:
            if db.in_transaction:
                db.rollback()
        except Exception:
            forget_thread_connections()


def init_app(app):
    """Register the per-request connection cleanup."""
    app.teardown_appcontext(close_db)
