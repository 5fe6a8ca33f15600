"""Backups of the app database, and restoring one.

SQLite: SQLite's online backup API, safe while the app runs. MySQL/MariaDB:
mysqldump (or mariadb-dump) in one transaction. The password goes to the
client tools through a temporary option file, never on the command line.
The cache tables come along; `pacs-lite sync --full` could rebuild them anyway.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from pacs_lite.db import parse_database_url

PREFIX = "pacs_lite-"


class BackupError(Exception):
    """A backup or restore could not be done; the message says why."""


def backup_folder(config, instance_path):
    """Return the folder backups go to (BACKUP_DIR, or instance/backups)."""
    return Path(config["BACKUP_DIR"] or os.path.join(instance_path, "backups"))


def make_backup(database_url, folder, now, keep):
    """Write a backup of the database into folder, keep the newest `keep`; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    url = parse_database_url(database_url)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    if url.dialect == "sqlite":
        target = folder / f"{PREFIX}{stamp}.sqlite"
        source = sqlite3.connect(url.path)
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)
        finally:
            destination.close()
            source.close()
    else:
        target = folder / f"{PREFIX}{stamp}.sql"
        with open(target, "wb") as out, mysql_options(url) as options:
            run_client(["mysqldump", "mariadb-dump"], options,
                       ["--single-transaction", "--skip-lock-tables", "--default-character-set=utf8mb4", url.database],
                       stdout=out)
    prune(folder, target.suffix, keep)
    return target


def prune(folder, suffix, keep):
    """Delete the oldest backups of one kind beyond the newest `keep`."""
    backups = sorted(Path(folder).glob(f"{PREFIX}*{suffix}"))
    for old in backups[:-keep] if keep > 0 else []:
        old.unlink()


def restore_backup(database_url, path):
    """Replace the database's content with a backup made by make_backup."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    url = parse_database_url(database_url)
    if url.dialect == "sqlite":
        if path.suffix != ".sqlite":
            raise BackupError(f"{path.name} is not a SQLite backup (.sqlite); this DATABASE_URL is SQLite")
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "schema_version" not in tables:
                raise BackupError(f"{path.name} is not a pacs_lite database")
            destination = sqlite3.connect(url.path)
            try:
                source.backup(destination)
            finally:
                destination.close()
        except sqlite3.DatabaseError as e:
            raise BackupError(f"{path.name} cannot be read as SQLite: {e}") from None
        finally:
            source.close()
        return
    if path.suffix != ".sql":
        raise BackupError(f"{path.name} is not a MySQL backup (.sql); this DATABASE_URL is MySQL")
    with open(path, "rb") as dump, mysql_options(url) as options:
        run_client(["mysql", "mariadb"], options, [url.database], stdin=dump)


@contextmanager
def mysql_options(url):
    """Yield the path of a private option file with the connection settings and password."""
    lines = ["[client]", f"user={url.user}", f"password={url.password}"]
    if url.unix_socket:
        lines.append(f"socket={url.unix_socket}")
    else:
        lines += [f"host={url.host}", f"port={url.port}", "protocol=TCP"]
    fd, name = tempfile.mkstemp(suffix=".cnf")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        yield name
    finally:
        os.unlink(name)


def run_client(programs, options, args, **streams):
    """Run the first MySQL client program found with the option file and args."""
    program = next((shutil.which(p) for p in programs if shutil.which(p)), None)
    if program is None:
        raise BackupError(f"{' or '.join(programs)} is not installed (MySQL/MariaDB client tools)")
    result = subprocess.run([program, f"--defaults-extra-file={options}", *args], stderr=subprocess.PIPE, **streams)
    if result.returncode != 0:
        raise BackupError(f"{os.path.basename(program)} failed: {result.stderr.decode(errors='replace').strip()}")
