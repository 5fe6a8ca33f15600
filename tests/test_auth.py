"""Login, sessions, logout, throttling and the auth audit, on SQLite and MariaDB."""

import datetime
import hashlib
import re
import statistics
import time

import pytest

from pacs_lite import accounts, passwords, users
from pacs_lite.auth import logins
from pacs_lite.auth.current_user import SESSION_COOKIE
from pacs_lite.clock import utc_now
from tests.conftest import csrf_token, login, make_user

PASSWORD = "correct horse battery"


def session_cookie(response):
    """Return the Set-Cookie header of the session cookie."""
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE + "="))


def cookie_token(response):
    """Return the session token a response set."""
    return session_cookie(response).split(";")[0].split("=", 1)[1]


def auth_events(db, event_type=None):
    """Return the auth_events rows, oldest first."""
    rows = db.query("SELECT * FROM auth_events ORDER BY id")
    return [r for r in rows if event_type is None or r["event_type"] == event_type]


def test_login_form_has_the_fields_and_a_csrf_token(client):
    page = client.get("/auth/login").get_data(as_text=True)
    for field in ('name="username"', 'name="password"', 'name="remember"', 'name="csrf_token"'):
        assert field in page


def test_login_opens_a_server_side_session(app, client, db):
    make_user(app)
    response = login(client, "alice", PASSWORD, environ={"REMOTE_ADDR": "10.1.2.3"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/patients"
    header = session_cookie(response)
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    assert "Expires" not in header  # without remember-me it ends with the browser session
    token = cookie_token(response)
    assert len(token) == 64 and int(token, 16) >= 0
    row = db.query_one("SELECT * FROM sessions")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row)
    assert row["ip"] == "10.1.2.3"
    hours = (row["expires_at"] - row["created_at"]).total_seconds() / 3600
    assert hours == pytest.approx(8, abs=0.01)
    assert client.get("/patients").status_code == 200


def test_check_session_reports_the_user_and_expiry(app, client):
    assert client.get("/auth/check_session").status_code == 401
    assert client.get("/auth/check_session").get_json() == {"authenticated": False}
    make_user(app, full_name="Alice Liddell")
    login(client, "alice", PASSWORD)
    body = client.get("/auth/check_session").get_json()
    assert body["authenticated"] is True
    assert body["user"] == {"username": "alice", "full_name": "Alice Liddell", "role": "radiologist"}
    expires = datetime.datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs((expires - utc_now()).total_seconds() - 8 * 3600) < 60


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_bad_credentials_get_the_same_answer_whether_the_user_exists_or_not(app, client, username):
    make_user(app)
    response = login(client, username, "wrong password!")
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "Wrong username or password." in page
    assert client.get("/auth/check_session").status_code == 401


def test_an_unknown_user_costs_the_same_bcrypt_check_as_a_known_one(app, db):
    make_user(app)
    app.config["BCRYPT_ROUNDS"] = 9
    users.set_password_hash(db, 1, passwords.hash_password(PASSWORD, 9), False, utc_now())
    db.commit()

    def median_seconds(username):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            with app.app_context():
                logins.attempt_login(db, app.config, username, "wrong password!", "127.0.0.9", "ua", utc_now())
            times.append(time.perf_counter() - started)
            db.execute("DELETE FROM login_attempts")
            db.commit()
        return statistics.median(times)

    known, unknown = median_seconds("alice"), median_seconds("nobody")
    # Skipping bcrypt for unknown users would make this ratio hundreds.
    assert 0.33 < unknown / known < 3


def test_inactive_user_cannot_log_in_and_is_not_told_why(app, client, db):
    make_user(app)
    user = users.get_user_by_username(db, "alice")
    accounts.set_active(db, user, False, utc_now())
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)


def test_logout_deletes_the_session_on_the_server(app, client, db):
    make_user(app)
    token = cookie_token(login(client, "alice", PASSWORD))
    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/patients")})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert db.query_value("SELECT COUNT(*) FROM sessions") == 0
    # Replaying the old cookie gets nowhere.
    client.set_cookie(SESSION_COOKIE, token)
    assert client.get("/auth/check_session").status_code == 401
    assert client.get("/patients").status_code == 302


def test_posts_without_a_csrf_token_are_refused(app, client, db):
    make_user(app)
    response = client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    login(client, "alice", PASSWORD)
    assert client.post("/auth/logout").status_code == 400
    assert client.post("/auth/logout", data={"csrf_token": "forged"}).status_code == 400
    assert db.query_value("SELECT COUNT(*) FROM sessions") == 1


def test_an_expired_session_is_refused(app, client, db):
    make_user(app)
    login(client, "alice", PASSWORD)
    assert client.get("/auth/check_session").status_code == 200
    db.execute("UPDATE sessions SET expires_at = ?", (utc_now() - datetime.timedelta(seconds=1),))
    db.commit()
    assert client.get("/auth/check_session").status_code == 401
    response = client.get("/patients")
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login?next=/patients")


def test_remember_me_keeps_the_session_for_remember_days(app, client, db):
    make_user(app)
    header = session_cookie(login(client, "alice", PASSWORD, remember=True))
    assert "Expires=" in header
    row = db.query_one("SELECT * FROM sessions")
    assert row["remember"] == 1
    assert (row["expires_at"] - row["created_at"]).days == app.config["REMEMBER_DAYS"]


def test_each_login_gets_a_new_token_and_a_planted_one_is_ignored(app, client, db):
    make_user(app)
    planted = "a" * 64
    client.set_cookie(SESSION_COOKIE, planted)
    first = cookie_token(login(client, "alice", PASSWORD))
    client.delete_cookie(SESSION_COOKIE)
    second = cookie_token(login(client, "alice", PASSWORD))
    assert len({planted, first, second}) == 3


def test_lockout_after_max_failures_blocks_even_the_right_password_until_it_expires(app, client, db):
    make_user(app)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login(client, "alice", "wrong password!").status_code == 401
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many failed logins. Try again after" in page and "minutes" in page
    assert int(response.headers["Retry-After"]) > 14 * 60
    assert len(auth_events(db, "lockout")) == 1
    # Another user from another address is not affected.
    make_user(app, "bob")
    assert login(client, "bob", PASSWORD, environ={"REMOTE_ADDR": "10.0.0.2"}).status_code == 302
    # Once the failures are older than the lockout window, the user may log in again.
    db.execute("UPDATE login_attempts SET attempted_at = ?", (utc_now() - datetime.timedelta(minutes=16),))
    db.commit()
    client.delete_cookie(SESSION_COOKIE)
    assert login(client, "alice", PASSWORD).status_code == 302
    assert db.query_value("SELECT COUNT(*) FROM login_attempts WHERE username = 'alice'") == 0


def test_one_address_is_throttled_across_usernames(app, client):
    make_user(app)
    app.config["LOGIN_MAX_FAILURES_PER_IP"] = 6
    for n in range(6):
        assert login(client, f"guess{n}", "wrong password!").status_code == 401
    assert login(client, "alice", PASSWORD).status_code == 429
    assert login(client, "alice", PASSWORD, environ={"REMOTE_ADDR": "10.9.9.9"}).status_code == 302


@pytest.mark.parametrize(
    "next_url, expected",
    [
        ("//evil.example/x", "/patients"),
        ("https://evil.example/", "/patients"),
        ("/\\evil.example", "/patients"),
        ("javascript:alert(1)", "/patients"),
        ("/studies?patientId=abc", "/studies?patientId=abc"),
    ],
)
def test_next_only_leads_to_this_site(app, client, next_url, expected):
    make_user(app)
    response = login(client, "alice", PASSWORD, next_url=next_url)
    assert response.headers["Location"] == expected


def test_changing_the_password_ends_the_other_sessions(app, db):
    make_user(app)
    laptop, workstation = app.test_client(), app.test_client()
    login(laptop, "alice", PASSWORD)
    login(workstation, "alice", PASSWORD)
    form = {
        "csrf_token": csrf_token(laptop, "/account/password"),
        "current_password": PASSWORD,
        "new_password": "a much newer secret",
        "confirm_password": "a much newer secret",
    }
    response = laptop.post("/account/password", data=form)
    assert response.status_code == 302
    assert laptop.get("/auth/check_session").status_code == 200
    assert workstation.get("/auth/check_session").status_code == 401
    assert login(app.test_client(), "alice", "a much newer secret").status_code == 302
    assert len(auth_events(db, "password_changed")) == 1


def test_change_password_form_rejects_a_wrong_current_password(app, client):
    make_user(app)
    login(client, "alice", PASSWORD)
    form = {
        "csrf_token": csrf_token(client, "/account/password"),
        "current_password": "not my password",
        "new_password": "a much newer secret",
        "confirm_password": "a much newer secret",
    }
    response = client.post("/account/password", data=form)
    assert response.status_code == 400
    assert "current password is wrong" in response.get_data(as_text=True)


def test_deactivation_ends_the_users_sessions(app, client, db):
    make_user(app)
    login(client, "alice", PASSWORD)
    accounts.set_active(db, users.get_user_by_username(db, "alice"), False, utc_now(), actor="admin")
    assert client.get("/auth/check_session").status_code == 401
    assert auth_events(db, "user_deactivated")[0]["actor"] == "admin"


def test_the_last_active_admin_cannot_be_deactivated(app, db):
    make_user(app, "root", role="admin")
    with pytest.raises(accounts.AccountError, match="last active admin"):
        accounts.set_active(db, users.get_user_by_username(db, "root"), False, utc_now())


def test_a_password_set_for_the_user_must_be_changed_first(app, client):
    make_user(app, must_change_password=True)
    response = login(client, "alice", PASSWORD, next_url="/patients")
    assert response.headers["Location"] == "/account/password"
    assert client.get("/patients").headers["Location"] == "/account/password"
    assert client.get("/auth/check_session").status_code == 200
    form = {
        "csrf_token": csrf_token(client, "/account/password"),
        "current_password": PASSWORD,
        "new_password": "my very own secret",
        "confirm_password": "my very own secret",
    }
    assert client.post("/account/password", data=form).status_code == 302
    assert client.get("/patients").status_code == 200


def test_the_auth_audit_records_logins_logouts_and_failures(app, client, db):
    make_user(app)
    environ = {"REMOTE_ADDR": "10.4.4.4", "HTTP_USER_AGENT": "TestBrowser/1.0"}
    login(client, "mallory", "wrong password!", environ=environ)
    login(client, "alice", PASSWORD, environ=environ)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/patients")}, environ_base=environ)
    events = [(e["event_type"], e["username"]) for e in auth_events(db)]
    assert events == [("user_created", "alice"), ("login_failed", "mallory"), ("login", "alice"), ("logout", "alice")]
    for event in auth_events(db)[1:]:
        assert event["ip"] == "10.4.4.4" and event["user_agent"] == "TestBrowser/1.0"
        assert event["created_at"] is not None


def test_last_seen_is_written_at_most_once_a_minute(app, client, db):
    make_user(app)
    login(client, "alice", PASSWORD)
    long_ago = utc_now() - datetime.timedelta(minutes=5)
    db.execute("UPDATE sessions SET last_seen_at = ?", (long_ago,))
    db.commit()
    client.get("/auth/check_session")
    first = db.query_value("SELECT last_seen_at FROM sessions")
    assert first > long_ago
    recent = first - datetime.timedelta(seconds=30)
    db.execute("UPDATE sessions SET last_seen_at = ?", (recent,))
    db.commit()
    client.get("/auth/check_session")
    assert db.query_value("SELECT last_seen_at FROM sessions") == recent


def test_cookies_are_secure_over_https(app, client):
    make_user(app)
    page = client.get("/auth/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    # Over HTTPS the CSRF check also wants a same-site Referer, as browsers send.
    headers = {"Referer": "https://localhost/auth/login"}
    response = client.post("/auth/login", data=form, base_url="https://localhost", headers=headers)
    assert "Secure" in session_cookie(response)


def test_forwarded_proto_is_trusted_only_when_configured(app, database_url, tmp_path):
    from pacs_lite import create_app

    make_user(app)
    headers = {"X-Forwarded-Proto": "https", "Referer": "https://localhost/auth/login"}
    for trust, secure in ((False, False), (True, True)):
        proxied = create_app(
            {"DATABASE_URL": database_url, "BCRYPT_ROUNDS": 4, "TRUST_PROXY": trust},
            instance_path=str(tmp_path / "instance"),
        )
        client = proxied.test_client()
        form = {"username": "alice", "password": PASSWORD, "csrf_token": csrf_token(client)}
        response = client.post("/auth/login", data=form, headers=headers)
        assert ("Secure" in session_cookie(response)) is secure


def test_default_bcrypt_cost_is_at_least_12():
    from pacs_lite.config import DEFAULTS

    assert DEFAULTS["BCRYPT_ROUNDS"] >= 12
    assert passwords.hash_password("x" * 10, DEFAULTS["BCRYPT_ROUNDS"]).startswith("$2b$12$")


def test_security_headers_are_on_every_page(client):
    headers = client.get("/auth/login").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    assert headers["X-Content-Type-Options"] == "nosniff"
