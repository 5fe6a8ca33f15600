"""`pacs-lite setup`: the first install on a clinic's server — settings file, schema, first admin, schedule.

setup.bat (Windows) and setup.sh (Linux) make the virtualenv, install the
package and build the browser bundles, then call this; the logic lives here
so that it is the same, and tested, everywhere.
"""

import json
import os
import tomllib

from pacs_lite.config import CONFIG_FILE_NAME

SETTING_NAMES = ("DATABASE_URL", "ORTHANC_URL", "ORTHANC_USERNAME", "ORTHANC_PASSWORD")


def config_path(instance_path):
    """Return the instance config file's path (PACS_LITE_CONFIG wins)."""
    return os.environ.get("PACS_LITE_CONFIG") or os.path.join(instance_path, CONFIG_FILE_NAME)


def read_settings(path):
    """Return the settings in an existing config file, or {}."""
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        return tomllib.load(f)


def toml_line(name, value):
    """Write one setting as a TOML line (JSON's string escapes are TOML's too)."""
    if isinstance(value, bool):
        return f"{name} = {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{name} = {value}"
    return f"{name} = {json.dumps(str(value), ensure_ascii=False)}"


def write_settings(path, settings):
    """Write the settings file, readable by its owner only (it holds passwords)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lines = ["# pacs_lite settings, written by 'pacs-lite setup'. See README.md, Configuration."]
    lines += [toml_line(name, value) for name, value in settings.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def merge_settings(existing, given):
    """Return the existing settings updated with the given (non-empty) ones."""
    merged = dict(existing)
    merged.update({name: value for name, value in given.items() if value not in (None, "")})
    return merged
