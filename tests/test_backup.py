"""`pacs-lite backup` and `restore`: a round trip on SQLite and MariaDB, rotation, bad files."""

import os
import subprocess
import sys

from pacs_lite.db import connect


def run(app, *args, stdin=""):
    """Run pacs-lite with the app's database and instance folder."""
    env = dict(os.environ, PACS_LITE_INSTANCE_PATH=app.instance_path,
               PACS_LITE_DATABASE_URL=app.config["DATABASE_URL"], PACS_LITE_BCRYPT_ROUNDS="4")
    return subprocess.run([sys.executable, "-m", "pacs_lite", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120)


def usernames(db):
    """Return the usernames in the database."""
    return sorted(r["username"] for r in db.query("SELECT username FROM users"))


def test_a_backup_restores_users_and_audit_after_changes(app, tmp_path):
    assert run(app, "create-user", "carol", "--role", "admin", "--password-stdin",
               stdin="a long enough secret\n").returncode == 0
    made = run(app, "backup", "--to", str(tmp_path / "my backups"))
    assert made.returncode == 0, made.stderr
    path = made.stdout.split(" to ", 1)[1].rsplit(" (", 1)[0]
    assert os.path.isfile(path) and os.path.dirname(path) == str(tmp_path / "my backups")
    run(app, "create-user", "dave", "--role", "radiologist", "--password-stdin", stdin="another long secret\n")
    db = connect(app.config["DATABASE_URL"])
    db.execute("DELETE FROM auth_events WHERE username = 'carol'")
    db.commit()
    assert usernames(db) == ["carol", "dave"]
    db.rollback()  # an open transaction would hold MariaDB's table locks against the restore
    restored = run(app, "restore", path, "--yes")
    assert restored.returncode == 0, restored.stderr
    db = connect(app.config["DATABASE_URL"])
    assert usernames(db) == ["carol"]
    assert db.query_value("SELECT COUNT(*) FROM auth_events WHERE username = 'carol'") == 1


def test_backups_are_rotated(app, tmp_path):
    folder = tmp_path / "rotated"
    for n in range(4):
        folder.mkdir(exist_ok=True)
        (folder / f"pacs_lite-2020010{n}-000000{'.sqlite' if app.config['DATABASE_URL'].startswith('sqlite') else '.sql'}").write_text("old")
    env_keep = dict(os.environ, PACS_LITE_BACKUP_KEEP="2")
    result = subprocess.run([sys.executable, "-m", "pacs_lite", "backup", "--to", str(folder)], capture_output=True,
                            text=True, timeout=120, env={**env_keep, "PACS_LITE_INSTANCE_PATH": app.instance_path,
                                                         "PACS_LITE_DATABASE_URL": app.config["DATABASE_URL"]})
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 and kept[0] == "pacs_lite-20200103-000000" + os.path.splitext(kept[0])[1]


def test_restore_refuses_a_missing_or_wrong_file_clearly(app, tmp_path):
    result = run(app, "restore", str(tmp_path / "none.sqlite"), "--yes")
    assert result.returncode == 2 and "no backup file at" in result.stderr
    junk = tmp_path / "junk.txt"
    junk.write_text("not a backup")
    result = run(app, "restore", str(junk), "--yes")
    assert result.returncode == 2 and "is not a" in result.stderr and "Traceback" not in result.stderr


def test_restore_asks_before_replacing(app, tmp_path):
    made = run(app, "backup", "--to", str(tmp_path))
    path = made.stdout.split(" to ", 1)[1].rsplit(" (", 1)[0]
    result = run(app, "restore", path, stdin="n\n")
    assert result.returncode == 2 and "not restored" in result.stderr
