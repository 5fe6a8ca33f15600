"""The built wheel works on its own: templates, static files and schema.sql ship inside the package.

The wheel is built from a copy of the checkout, installed into a private
folder, and exercised in a fresh interpreter that cannot see the checkout:
the editable install of the test virtualenv must not hide a file the wheel
forgot.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Kept out of the copy: they are not part of the project, or they are build
# leftovers (a stale build/lib would smuggle deleted files into the wheel).
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "build", "dist", "instance", "*.egg-info", "__pycache__", ".pytest_cache",
)

SHIPPED = ("pacs_lite/schema.sql", "pacs_lite/templates/login.html", "pacs_lite/static/css/app.css")
VENDOR_BUNDLE = "pacs_lite/static/vendor/cornerstone/cornerstone.js"

# Runs in the fresh interpreter; prints one JSON line for the test to check.
SMOKE_TEST = textwrap.dedent(
    """
    import json
    import sys

    import pacs_lite
    from pacs_lite import create_app, schema
    from pacs_lite.db import connect, forget_thread_connections

    database_url, instance_path = sys.argv[1], sys.argv[2]
    app = create_app({"DATABASE_URL": database_url, "TESTING": True}, instance_path=instance_path)
    schema.init_db(connect(database_url))
    client = app.test_client()
    login = client.get("/auth/login")
    css = client.get("/static/css/app.css")
    result = {
        "package_file": pacs_lite.__file__,
        "template_folder": app.template_folder,
        "static_folder": app.static_folder,
        "sys_path": sys.path,
        "meta_path": [type(finder).__module__ for finder in sys.meta_path],
        "login_status": login.status_code,
        "login_page": login.get_data(as_text=True),
        "css_status": css.status_code,
        "css_mimetype": css.mimetype,
        "css_length": len(css.get_data()),
        "schema_version": schema.current_version(connect(database_url)),
    }
    login.close()
    css.close()
    forget_thread_connections()
    print(json.dumps(result))
    """
)


def can_build_without_isolation():
    """Tell whether this virtualenv has the build backend, so pip need not fetch one."""
    return all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))


def build_wheel(tmp_path):
    """Build the project's wheel from a copy of the checkout; return its path."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    wheel_dir = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(source)]
    if can_build_without_isolation():
        command.insert(4, "--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = wheel_dir.glob("pacs_lite-*.whl")
    return wheel


def install_wheel(wheel, site):
    """Install the wheel alone into a folder of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dependency_paths():
    """Return the virtualenv's site-packages folders, where the dependencies are."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def test_the_wheel_carries_its_files_and_runs_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in SHIPPED:
        assert name in names, f"the wheel lacks {name}"
    if (REPO / "static" / "vendor" / "cornerstone" / "cornerstone.js").exists():
        assert VENDOR_BUNDLE in names, "static/vendor was built but the wheel lacks it"
    assert not any(name.startswith(("tests/", "node_modules/", "instance/")) for name in names)

    site = tmp_path / "site"
    install_wheel(wheel, site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("PACS_LITE_", "PYTHON"))}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), *dependency_paths()])
    # -S: no site module, so the virtualenv's .pth files (the editable install's
    # finder among them) are never run; only PYTHONPATH is searched.
    result = subprocess.run(
        [sys.executable, "-S", "-W", "error", "-c", SMOKE_TEST,
         f"sqlite:///{tmp_path / 'db' / 'pacs_lite.db'}", str(tmp_path / "instance")],
        cwd=elsewhere, env=environ, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert Path(report["package_file"]).resolve().is_relative_to(site.resolve())
    assert Path(report["template_folder"]).resolve().is_relative_to(site.resolve())
    assert Path(report["static_folder"]).resolve().is_relative_to(site.resolve())
    assert str(REPO) not in [os.path.abspath(p or str(elsewhere)) for p in report["sys_path"]]
    assert not any("editable" in module for module in report["meta_path"])
    assert report["schema_version"] >= 1

    assert report["login_status"] == 200
    for field in ('name="username"', 'name="password"', 'name="csrf_token"'):
        assert field in report["login_page"]
    assert report["css_status"] == 200
    assert report["css_mimetype"] == "text/css"
    assert report["css_length"] == (REPO / "static" / "css" / "app.css").stat().st_size
