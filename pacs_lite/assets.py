"""Static files: versioned URLs (?v=<content hash>) that browsers may cache for a year.

Templates write {{ asset_url('css/app.css') }}; a new release changes the
hash, so the browser fetches the new file. Files fetched without ?v= (e.g.
modules imported by other modules) are revalidated with their ETag instead.
"""

import hashlib
import os

from flask import current_app, request, url_for

YEAR = 365 * 24 * 3600
_hashes = {}  # (path, mtime, size) -> short content hash


def content_hash(path):
    """Return a short hash of a file's content, computed once per version of the file."""
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _hashes:
        with open(path, "rb") as f:
            _hashes[key] = hashlib.sha256(f.read()).hexdigest()[:12]
    return _hashes[key]


def asset_url(filename):
    """Return the URL of a static file with its content hash; a missing file gets a plain URL."""
    path = os.path.join(current_app.static_folder, filename)
    if not os.path.isfile(path):
        return url_for("static", filename=filename)
    return url_for("static", filename=filename, v=content_hash(path))


def static_max_age(filename):
    """Cache versioned static files for a year; revalidate the others every time."""
    return YEAR if request.args.get("v") else 0


def init_app(app):
    """Offer asset_url to templates and set the static files' caching."""
    app.jinja_env.globals["asset_url"] = asset_url
    app.get_send_file_max_age = static_max_age
