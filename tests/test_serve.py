"""`pacs-lite serve` as a real waitress process: login over HTTP, MIME types, and database faults."""

import re
import subprocess
import urllib.parse

import pymysql
import pytest
import requests

from pacs_lite.resources import resource_path
from tests.mariadb_server import PASSWORD as MARIADB_PASSWORD
from tests.mariadb_server import MariaDBServer, free_port
from tests.serve_process import PACS_LITE, environment, start_server

ADMIN_PASSWORD = "a long enough secret"
HTTP_TIMEOUT = 10
DATABASE_DOWN = "The database is not reachable"
SERVE_THREADS = 8  # `pacs-lite serve --threads` default


def run_command(tmp_path, database_url, *args, stdin=""):
    """Run one pacs-lite command to the end; return the finished process."""
    return subprocess.run([*PACS_LITE, *args], input=stdin, capture_output=True, text=True,
                          env=environment(tmp_path / "instance", database_url), timeout=60)


def prepare_database(tmp_path, database_url):
    """Create the schema and an admin with a known password, through the command line."""
    result = run_command(tmp_path, database_url, "init-db")
    assert result.returncode == 0, result.stderr
    result = run_command(tmp_path, database_url, "create-user", "admin", "--role", "admin", "--password-stdin",
                         stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def serve(tmp_path):
    """Start `pacs-lite serve` processes on a database; stop them all at the end of the test."""
    servers = []

    def start(database_url, prepare=True):
        if prepare:
            prepare_database(tmp_path, database_url)
        server = start_server(environment(tmp_path / "instance", database_url), tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def form_token(page):
    """Return the CSRF token of the form on a page."""
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def location_path(response):
    """Return the path a redirect points to."""
    return urllib.parse.urlsplit(response.headers["Location"]).path


def log_in(http, server):
    """Log in as the admin through the form; return the response and the form's CSRF token."""
    token = form_token(http.get(server.url + "/auth/login", timeout=HTTP_TIMEOUT).text)
    response = http.post(server.url + "/auth/login", allow_redirects=False, timeout=HTTP_TIMEOUT,
                         data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token, "next": ""})
    return response, token


# database_url comes before serve in the arguments so the servers stop before
# the database fixture drops the test database.
def test_serve_logs_in_and_out_over_http(database_url, serve):
    server = serve(database_url)
    with requests.Session() as http:
        start = http.get(server.url + "/", allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert start.status_code == 302 and location_path(start) == "/auth/login"

        response, token = log_in(http, server)
        assert response.status_code == 302, response.text
        assert location_path(response) == "/patients"
        cookie = next(c for c in http.cookies if c.name == "pacs_lite_session")
        assert re.fullmatch(r"[0-9a-f]{64}", cookie.value)
        assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure

        worklist = http.get(server.url + "/patients", allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert worklist.status_code == 200

        check = http.get(server.url + "/auth/check_session", timeout=HTTP_TIMEOUT)
        assert check.status_code == 200
        body = check.json()
        assert body["authenticated"] is True
        assert body["user"]["username"] == "admin" and body["user"]["role"] == "admin"
        assert body["expires_at"]

        logout = http.post(server.url + "/auth/logout", data={"csrf_token": token}, allow_redirects=False,
                           timeout=HTTP_TIMEOUT)
        assert logout.status_code == 302 and location_path(logout) == "/auth/login"

        after = http.get(server.url + "/auth/check_session", timeout=HTTP_TIMEOUT)
        assert after.status_code == 401 and after.json() == {"authenticated": False}
    assert server.process.poll() is None
    assert "Traceback" not in server.log()


def test_logout_without_the_csrf_token_is_refused(serve, tmp_path):
    server = serve(f"sqlite:///{tmp_path / 'pacs_lite.db'}")
    with requests.Session() as http:
        response, _ = log_in(http, server)
        assert response.status_code == 302
        refused = http.post(server.url + "/auth/logout", allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert refused.status_code == 400 and "Traceback" not in refused.text
        assert http.get(server.url + "/auth/check_session", timeout=HTTP_TIMEOUT).status_code == 200


def static_files(suffix):
    """Return the shipped static files with this suffix, our own before the vendor bundles."""
    static = resource_path("static")
    return sorted(static.rglob(f"*{suffix}"), key=lambda p: ("vendor" in p.relative_to(static).parts, str(p)))


def test_static_files_are_served_with_the_types_browsers_need(serve, tmp_path):
    scripts = static_files(".js")
    if not scripts:
        pytest.skip("no .js file under static/ yet: run `npm ci && npm run build`")
    server = serve(f"sqlite:///{tmp_path / 'pacs_lite.db'}")
    static = resource_path("static")
    expected = [(scripts[0], "text/javascript"), (static / "css" / "app.css", "text/css")]
    wasm = static_files(".wasm")
    if wasm:  # only after `npm run build`
        expected.append((wasm[0], "application/wasm"))
    with requests.Session() as http:
        for path, mimetype in expected:
            url = f"{server.url}/static/{path.relative_to(static).as_posix()}"
            response = http.get(url, timeout=HTTP_TIMEOUT)
            assert response.status_code == 200, url
            assert response.headers["Content-Type"].split(";")[0] == mimetype, url
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.content == path.read_bytes()


@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_serve_on_an_unreachable_database_exits_2_with_one_line(database_url, serve, tmp_path):
    running = serve(database_url)
    result = subprocess.run([*PACS_LITE, "serve", "--port", str(free_port())], capture_output=True, text=True,
                            env=environment(tmp_path / "instance", "mysql://u:p@127.0.0.1:1/db"), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pacs-lite: error: ")
    assert "cannot open the MySQL database 'db' at 127.0.0.1:1" in lines[0]
    assert "serving on" not in result.stdout
    # The server already running on the good database is untouched.
    with requests.Session() as http:
        assert http.get(running.url + "/auth/login", timeout=HTTP_TIMEOUT).status_code == 200
    assert running.process.poll() is None


def assert_database_down_page(response):
    """Check a response is the plain 503 page, without a stack trace."""
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    assert DATABASE_DOWN in response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_a_database_server_stopped_mid_run_gives_503_then_recovers(serve, tmp_path_factory):
    with MariaDBServer(tmp_path_factory.mktemp("mariadb-stop")) as mariadb:
        server = serve(mariadb.create_database("pacs_stop"))
        with requests.Session() as http:
            response, _ = log_in(http, server)
            assert response.status_code == 302
            for _ in range(2 * SERVE_THREADS):  # every waitress thread gets a pooled connection
                assert http.get(server.url + "/patients", timeout=HTTP_TIMEOUT).status_code == 200

            mariadb.stop()
            request_ids = []
            for _ in range(2 * SERVE_THREADS):  # every thread finds its pooled connection dead
                down = http.get(server.url + "/patients", timeout=HTTP_TIMEOUT)
                assert_database_down_page(down)
                request_ids.append(down.headers["X-Request-ID"])
            assert server.process.poll() is None
            # The admin can find each failed request in the app's log by the id the client saw.
            app_log = (server.log_path.parent / "instance" / "logs" / "app.log").read_text()
            for request_id in request_ids:
                assert f"[{request_id}] pacs_lite.errors: database unavailable" in app_log
            assert ADMIN_PASSWORD not in app_log and MARIADB_PASSWORD not in app_log  # no secrets in logs

            mariadb.start()
            # Nothing was lost: the same session works again once the database is back.
            assert http.get(server.url + "/patients", allow_redirects=False, timeout=HTTP_TIMEOUT).status_code == 200
    assert "Traceback" not in server.log()


def drop_database_now(mariadb, database_url):
    """Drop the database under the running app; fail, rather than hang, if a connection holds a lock on it."""
    connection = pymysql.connect(unix_socket=mariadb.socket, user="root", connect_timeout=2)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION lock_wait_timeout = 5")
            cursor.execute(f"DROP DATABASE `{urllib.parse.urlsplit(database_url).path.lstrip('/')}`")
    finally:
        connection.close()


@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_a_database_dropped_mid_run_gives_503(database_url, serve, mariadb):
    server = serve(database_url)
    with requests.Session() as http:
        response, _ = log_in(http, server)
        assert response.status_code == 302
        # More requests than waitress has threads, so every thread holds a pooled connection.
        for _ in range(2 * SERVE_THREADS):
            assert http.get(server.url + "/patients", timeout=HTTP_TIMEOUT).status_code == 200

        drop_database_now(mariadb, database_url)
        for _ in range(2 * SERVE_THREADS):  # each thread's stale connection is tried
            assert_database_down_page(http.get(server.url + "/patients", timeout=HTTP_TIMEOUT))
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
