"""`pacs-lite check` (and scripts/test_system.py) against real databases and a real Orthanc."""

import os
import subprocess
import sys

import pytest

from pacs_lite import sync
from pacs_lite.db import connect
from tests.conftest import make_user, point_at


def run_check(app, tmp_path, script=False, **settings):
    """Run the health check with the app's settings; return the finished process."""
    env = dict(os.environ, PACS_LITE_INSTANCE_PATH=app.instance_path)
    for name in ("DATABASE_URL", "ORTHANC_URL", "ORTHANC_USERNAME", "ORTHANC_PASSWORD"):
        env[f"PACS_LITE_{name}"] = str(settings.get(name, app.config[name]))
    for name, value in settings.items():
        env[f"PACS_LITE_{name}"] = str(value)
    command = [sys.executable, "scripts/test_system.py"] if script else [sys.executable, "-m", "pacs_lite", "check"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def lines_of(result):
    """Map each check's name to its (status, message)."""
    found = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status in ("PASS", "WARN", "FAIL"):
            name, _, message = rest.partition(": ")
            found[name] = (status, message)
    return found


def test_a_fresh_install_fails_with_what_to_do(app, tmp_path, empty_orthanc):
    point_at(app, empty_orthanc).close()
    result = run_check(app, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    found = lines_of(result)
    assert found["database"][0] == "PASS" and found["schema"][0] == "PASS"
    assert found["admin"] == ("FAIL", "no active admin; run 'pacs-lite create-user NAME --role admin'")
    assert found["cache"][0] == "FAIL" and "run 'pacs-lite sync'" in found["cache"][1]
    assert found["orthanc"][0] == "PASS"


def test_a_healthy_install_passes(app, tmp_path, sample_orthanc):
    client = point_at(app, sample_orthanc)
    sync.sync_once(connect(app.config["DATABASE_URL"]), client, app.config["DATABASE_URL"])
    client.close()
    make_user(app, "root", "a long enough secret", "admin")
    result = run_check(app, tmp_path, script=True)
    assert result.returncode == 0, result.stdout
    found = lines_of(result)
    assert all(status == "PASS" for status, _ in found.values()), found
    assert "Orthanc 1." in found["orthanc"][1]
    assert result.stdout.strip().endswith(f"0 failed, 0 warnings, {len(found)} passed.")


def test_stale_cache_one_time_password_and_bad_orthanc_credentials(app, tmp_path, sample_orthanc, db):
    client = point_at(app, sample_orthanc)
    sync.sync_once(connect(app.config["DATABASE_URL"]), client, app.config["DATABASE_URL"])
    client.close()
    make_user(app, "root", "a long enough secret", "admin", must_change_password=True)
    db.execute("UPDATE sync_state SET last_success_at = '2020-01-01 00:00:00'")
    db.commit()
    found = lines_of(run_check(app, tmp_path, ORTHANC_PASSWORD="wrong"))
    assert found["cache"][0] == "FAIL" and "older than 15 min" in found["cache"][1]
    assert found["default password"][0] == "WARN" and "root" in found["default password"][1]
    assert found["orthanc"][0] == "FAIL" and "ORTHANC_USERNAME and ORTHANC_PASSWORD" in found["orthanc"][1]


@pytest.mark.parametrize("key", ["dev", "short-key"])
def test_a_weak_secret_key_fails(app, tmp_path, key):
    found = lines_of(run_check(app, tmp_path, SECRET_KEY=key))
    assert found["secret key"][0] == "FAIL"


def test_an_unreachable_database_is_a_fail_line(app, tmp_path):
    result = run_check(app, tmp_path, DATABASE_URL="mysql://u:p@127.0.0.1:1/db")
    assert result.returncode == 1
    assert lines_of(result)["database"][0] == "FAIL"
