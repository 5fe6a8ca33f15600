"""Static files: versioned URLs (?v=<content hash>) that browsers may cache for a year, gzipped when possible.

Templates write {{ asset_url('css/app.css') }}; a new release changes the
hash, so the browser fetches the new file. The chunks the front-end build
splits off (chunk-<hash>.js, imported by the bundles) carry their content hash
in their name and are kept for a year too. Other files fetched without ?v=
are revalidated with their ETag instead.
The front-end build writes a .gz beside each large bundle; browsers that
accept gzip get it (the viewer's 2.6 MB Cornerstone chunk is 0.7 MB gzipped).
"""

import hashlib
import mimetypes
import os
import re

from flask import current_app, request, send_from_directory, url_for

YEAR = 365 * 24 * 3600
# esbuild's name for a chunk: its content hash, 8 characters of A-Z and 2-7 (frontend/build.mjs).
CONTENT_NAMED = re.compile(r"(^|/)chunk-[A-Z2-7]{8}\.js$")
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
    """Cache versioned and content-named static files for a year; revalidate the others every time."""
    return YEAR if request.args.get("v") or CONTENT_NAMED.search(filename) else 0


def static_file(filename):
    """Serve a static file, its precompressed .gz when the browser accepts gzip."""
    folder = current_app.static_folder
    compressed = filename + ".gz"
    if "gzip" in request.accept_encodings and os.path.isfile(os.path.join(folder, compressed)):
        response = send_from_directory(folder, compressed, mimetype=mimetypes.guess_type(filename)[0],
                                       max_age=static_max_age(filename))
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = send_from_directory(folder, filename, max_age=static_max_age(filename))
    response.vary.add("Accept-Encoding")
    return response


def init_app(app):
    """Offer asset_url to templates, set the static files' caching, and serve them gzipped when possible."""
    app.jinja_env.globals["asset_url"] = asset_url
    app.get_send_file_max_age = static_max_age
    app.view_functions["static"] = static_file
