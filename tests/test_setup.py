"""`pacs-lite setup` (what setup.bat and setup.sh end with), on SQLite and MariaDB, with a real Orthanc."""

import os
import subprocess
import sys
import tomllib

from pacs_lite import schema
from pacs_lite.db import connect


def run_setup(instance, *args):
    """Run pacs-lite setup without a terminal; return the finished process."""
    env = dict(os.environ, PACS_LITE_INSTANCE_PATH=str(instance), PACS_LITE_BCRYPT_ROUNDS="4")
    for name in ("PACS_LITE_DATABASE_URL", "PACS_LITE_CONFIG"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pacs_lite", "setup", "--non-interactive", *args],
                          capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_setup_writes_the_settings_creates_the_schema_and_one_admin(database_url, tmp_path, sample_orthanc):
    instance = tmp_path / "instance"
    result = run_setup(instance, "--database-url", database_url, "--orthanc-url", sample_orthanc.url,
                       "--orthanc-username", sample_orthanc.username, "--orthanc-password", sample_orthanc.password)
    assert result.returncode == 0, result.stderr
    settings_file = instance / "pacs_lite.toml"
    settings = tomllib.loads(settings_file.read_text())
    assert settings == {"DATABASE_URL": database_url, "ORTHANC_URL": sample_orthanc.url,
                        "ORTHANC_USERNAME": sample_orthanc.username, "ORTHANC_PASSWORD": sample_orthanc.password}
    assert oct(settings_file.stat().st_mode & 0o777) == "0o600"
    assert f"schema version {schema.LATEST_VERSION} (created)" in result.stdout
    assert "PASS  orthanc: Orthanc 1." in result.stdout
    password = result.stdout.split("one-time password: ", 1)[1].split()[0]
    db = connect(database_url)
    admin = db.query_one("SELECT username, role, must_change_password FROM users")
    assert admin == {"username": "admin", "role": "admin", "must_change_password": 1}
    assert len(password) >= 10
    # Run again: the settings stay (only what is given changes), no second admin.
    again = run_setup(instance, "--orthanc-url", "http://127.0.0.1:1/")
    assert again.returncode == 0, again.stderr
    assert "An active admin exists already" in again.stdout
    assert "FAIL  orthanc" in again.stdout
    settings = tomllib.loads(settings_file.read_text())
    assert settings["DATABASE_URL"] == database_url and settings["ORTHANC_URL"] == "http://127.0.0.1:1/"
    assert db.query_value("SELECT COUNT(*) FROM users") == 1


def test_setup_with_a_bad_database_url_says_which_setting(tmp_path):
    result = run_setup(tmp_path / "instance", "--database-url", "mysql://u:p@127.0.0.1:1/db")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot open the MySQL database 'db'" in result.stderr


def test_setup_scripts_call_the_same_command():
    with open("setup.bat", newline="") as f:
        bat = f.read()
    assert "\r\n" in bat and "-m pacs_lite setup %*" in bat and "https://nodejs.org/" in bat
    with open("setup.sh") as f:
        sh = f.read()
    assert "bash scripts/install.sh" in sh and 'exec .venv/bin/pacs-lite setup "$@"' in sh
