"""The health check (`pacs-lite check`): each line PASS, WARN or FAIL, with what to do about it."""

import datetime
import shutil
from dataclasses import dataclass

from pacs_lite import cache, schema, sessions
from pacs_lite.clock import utc_now
from pacs_lite.db import DatabaseUnavailable, connect
from pacs_lite.orthanc import OrthancAuthError, OrthancError, client_from_config

DISK_WARN_BYTES = 2 * 1024**3
DISK_FAIL_BYTES = 200 * 1024**2
WEAK_SECRET_KEYS = {"dev", "secret", "changeme", "change-me", "please-change-me", "secret_key"}


@dataclass
class Check:
    """One line of the health check."""

    status: str  # PASS, WARN or FAIL
    name: str
    message: str

    def line(self):
        """Format the check as one line."""
        return f"{self.status:<4}  {self.name}: {self.message}"


def run_checks(config, instance_path):
    """Run every check; return the list of Check."""
    checks = [Check("PASS", "config", f"settings read; instance folder {instance_path}")]
    checks.append(check_secret_key(config))
    try:
        db = connect(config["DATABASE_URL"])
        checks.append(Check("PASS", "database", f"{db.url.describe()} answers"))
    except DatabaseUnavailable as e:
        checks.append(Check("FAIL", "database", f"{e}; check that the server runs and DATABASE_URL is right"))
        db = None
    if db is not None:
        checks += database_checks(db, config)
    checks.append(check_orthanc(config))
    checks.append(check_disk(instance_path))
    return checks


def check_secret_key(config):
    """The secret key must not be a well-known or short one."""
    key = config["SECRET_KEY"]
    if key.lower() in WEAK_SECRET_KEYS or len(key) < 32:
        return Check("FAIL", "secret key", "SECRET_KEY is a default or shorter than 32 characters; remove it from "
                                           "the config to have one generated, or set a long random one")
    return Check("PASS", "secret key", "set and not a default")


def database_checks(db, config):
    """Check the schema, the users, the cache's freshness and the sessions."""
    version = schema.current_version(db)
    if version == 0:
        return [Check("FAIL", "schema", "the database has no schema; run 'pacs-lite init-db'")]
    if version != schema.LATEST_VERSION:
        return [Check("FAIL", "schema", f"version {version}, this pacs_lite needs {schema.LATEST_VERSION}; "
                                        "run 'pacs-lite init-db' to upgrade")]
    checks = [Check("PASS", "schema", f"version {version} is current")]
    admins = db.query("SELECT username, must_change_password FROM users WHERE role = 'admin' AND is_active = 1")
    if not admins:
        checks.append(Check("FAIL", "admin", "no active admin; run 'pacs-lite create-user NAME --role admin'"))
    else:
        checks.append(Check("PASS", "admin", f"{len(admins)} active admin(s)"))
    unchanged = [a["username"] for a in admins if a["must_change_password"]]
    if unchanged:
        checks.append(Check("WARN", "default password", f"{', '.join(unchanged)} still has a one-time password; "
                                                        "log in and choose a new one"))
    else:
        checks.append(Check("PASS", "default password", "every admin chose their own password"))
    checks.append(check_cache(db, config))
    checks.append(Check("PASS", "sessions", f"{sessions.count_active_sessions(db, utc_now())} active"))
    return checks


def check_cache(db, config):
    """The last successful sync must be recent."""
    state = cache.get_sync_state(db)
    limit = datetime.timedelta(minutes=config["SYNC_STALE_MINUTES"])
    if state["last_success_at"] is None:
        return Check("FAIL", "cache", "never synced; run 'pacs-lite sync' and schedule it ('pacs-lite schedule')")
    age = utc_now() - state["last_success_at"]
    minutes = int(age.total_seconds() // 60)
    if age > limit:
        error = f" (last error: {state['last_error']})" if state["last_error"] else ""
        return Check("FAIL", "cache", f"last sync {minutes} min ago, older than {config['SYNC_STALE_MINUTES']} min"
                                      f"{error}; check the scheduled sync")
    counts = cache.counts(db)
    return Check("PASS", "cache", f"synced {minutes} min ago; {counts['patients']} patients, "
                                  f"{counts['studies']} studies")


def check_orthanc(config):
    """Orthanc must answer with our credentials."""
    client = client_from_config(config)
    try:
        version = client.system().get("Version", "?")
        return Check("PASS", "orthanc", f"Orthanc {version} answers at {config['ORTHANC_URL']}")
    except OrthancAuthError as e:
        return Check("FAIL", "orthanc", e.message)
    except OrthancError as e:
        return Check("FAIL", "orthanc", e.message)
    finally:
        client.close()


def check_disk(instance_path):
    """The instance folder's disk must have room for the database, logs and backups."""
    free = shutil.disk_usage(instance_path).free
    shown = f"{free / 1024**3:.1f} GB free for {instance_path}"
    if free < DISK_FAIL_BYTES:
        return Check("FAIL", "disk", f"only {shown}; free some space")
    if free < DISK_WARN_BYTES:
        return Check("WARN", "disk", f"only {shown}")
    return Check("PASS", "disk", shown)
