"""Settings: defaults, then the instance config file, then PACS_LITE_* variables.

The instance config file is TOML (``instance/pacs_lite.toml``, or the path in
``PACS_LITE_CONFIG``) with the same upper-case names as the variables, e.g.
``DATABASE_URL = "mysql://pacs:secret@127.0.0.1:3306/pacs"``.
"""

import os
import secrets
import tomllib
from pathlib import Path

CONFIG_FILE_NAME = "pacs_lite.toml"
SECRET_KEY_FILE_NAME = "secret_key"

DEFAULTS = {
    "DATABASE_URL": "",  # empty: SQLite file pacs_lite.db in the instance folder
    "ORTHANC_URL": "http://127.0.0.1:8042",
    "ORTHANC_USERNAME": "",
    "ORTHANC_PASSWORD": "",
    "ORTHANC_TIMEOUT": 30,
    "SECRET_KEY": "",  # empty: generated once and kept in the instance folder
    "SESSION_HOURS": 8,
    "REMEMBER_DAYS": 30,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCKOUT_MINUTES": 15,
    "LOGIN_MAX_FAILURES_PER_IP": 20,
    "PAGE_SIZE": 50,
    "AUDIT_RETENTION_DAYS": 90,
    "BCRYPT_ROUNDS": 12,
    "TRUST_PROXY": False,  # honour X-Forwarded-Proto/For from one reverse proxy
    "SYNC_STALE_MINUTES": 15,
    "SYNC_DELETION_CHECK_MINUTES": 5,
    "BREAK_GLASS_MINUTES": 60,
    "BACKUP_DIR": "",  # empty: the backups folder in the instance folder
    "BACKUP_KEEP": 14,
}

POSITIVE_INTEGERS = (
    "ORTHANC_TIMEOUT",
    "SESSION_HOURS",
    "REMEMBER_DAYS",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_MINUTES",
    "LOGIN_MAX_FAILURES_PER_IP",
    "PAGE_SIZE",
    "AUDIT_RETENTION_DAYS",
    "SYNC_STALE_MINUTES",
    "SYNC_DELETION_CHECK_MINUTES",
    "BREAK_GLASS_MINUTES",
    "BACKUP_KEEP",
)


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says how to fix it."""


def load(app, overrides=None):
    """Fill app.config from defaults, the instance file, the environment, then overrides."""
    app.config.update(DEFAULTS)
    config_file = os.environ.get("PACS_LITE_CONFIG") or os.path.join(app.instance_path, CONFIG_FILE_NAME)
    if os.environ.get("PACS_LITE_CONFIG") or os.path.exists(config_file):
        load_file(app, config_file)
    app.config.from_prefixed_env("PACS_LITE")
    if overrides:
        app.config.update(overrides)
    validate(app.config)
    app.config["DATABASE_URL"] = absolute_database_url(app.config["DATABASE_URL"], app.instance_path)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)


def load_file(app, path):
    """Read the TOML instance config file into app.config."""
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"PACS_LITE_CONFIG: no file at {path}; fix the path or unset the variable") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML ({e}); fix that line") from None
    app.config.update({key.upper(): value for key, value in values.items()})


def validate(config):
    """Raise ConfigError for the first setting that is wrong."""
    for name in POSITIVE_INTEGERS:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
    rounds = config["BCRYPT_ROUNDS"]
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 4 <= rounds <= 31:
        raise ConfigError(f"BCRYPT_ROUNDS must be a whole number from 4 to 31 (12 or more in production), not {rounds!r}")
    url = config["ORTHANC_URL"]
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"ORTHANC_URL must start with http:// or https://, not {url!r}")


def absolute_database_url(url, instance_path):
    """Return the URL with a SQLite file path made absolute (relative paths are in the instance folder)."""
    from pacs_lite.db import parse_database_url

    if not url:
        url = "sqlite:///pacs_lite.db"
    parsed = parse_database_url(url)
    if parsed.dialect == "sqlite" and not os.path.isabs(parsed.path):
        return "sqlite:///" + os.path.join(os.path.abspath(instance_path), parsed.path)
    return url


def instance_secret_key(instance_path):
    """Return the secret key kept in the instance folder, creating it on first use."""
    path = Path(instance_path) / SECRET_KEY_FILE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()
