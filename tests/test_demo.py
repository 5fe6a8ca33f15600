"""`pacs-lite demo` end to end: a private Orthanc, sample studies, an admin, the server, Ctrl-C."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import requests

from pacs_lite.orthanc_server import free_loopback_port


def start_demo(instance, port):
    """Start the demo; return the process and the lines it printed up to the login hint."""
    env = dict(os.environ, PACS_LITE_INSTANCE_PATH=str(instance), PACS_LITE_BCRYPT_ROUNDS="4")
    env.pop("PACS_LITE_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "pacs_lite", "demo", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops"):
            return process, lines
    process.kill()
    process.communicate()
    raise AssertionError("the demo did not come up:\n" + "".join(lines))


def stop_demo(process):
    """Press Ctrl-C; return what the demo printed after it."""
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    return rest


def csrf(session, url):
    """Return the CSRF token of the form at url."""
    return re.search(r'name="csrf_token" value="([^"]+)"', session.get(url).text).group(1)


def test_demo_serves_real_studies_to_an_admin_who_must_choose_a_password(tmp_path):
    port = free_loopback_port()
    base = f"http://127.0.0.1:{port}"
    process, lines = start_demo(tmp_path / "instance", port)
    try:
        text = "".join(lines)
        assert "Loaded 296 images." in text
        assert "Full sync (empty cache): 36 studies added" in text
        password = re.search(r"one-time password (\S+)", text).group(1)
        with requests.Session() as browser:
            token = csrf(browser, f"{base}/auth/login")
            answer = browser.post(f"{base}/auth/login", data={"username": "admin", "password": password,
                                                              "csrf_token": token}, allow_redirects=False)
            assert answer.status_code == 302 and answer.headers["Location"] == "/account/password"
            form = {"csrf_token": csrf(browser, f"{base}/account/password"), "current_password": password,
                    "new_password": "my own demo secret", "confirm_password": "my own demo secret"}
            assert browser.post(f"{base}/account/password", data=form, allow_redirects=False).status_code == 302
            assert browser.get(f"{base}/patients").status_code == 200
            assert browser.get(f"{base}/auth/check_session").json()["user"]["role"] == "admin"
    finally:
        rest = stop_demo(process)
    assert process.returncode == 0, rest
    assert "Demo stopped." in rest
    with sqlite3.connect(tmp_path / "instance" / "pacs_lite.db") as db:
        assert db.execute("SELECT COUNT(*) FROM cached_studies").fetchone()[0] == 36
    db.close()
    orthancs = subprocess.run(["pgrep", "-f", str(tmp_path / "instance")], capture_output=True, text=True)
    assert orthancs.stdout == "", "the demo's Orthanc outlived it"

    # A second run keeps the studies and the admin.
    process, lines = start_demo(tmp_path / "instance", port)
    stop_demo(process)
    text = "".join(lines)
    assert "Orthanc already holds studies" in text and "one-time password" not in text
