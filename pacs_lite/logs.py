"""Logging to stderr and to a rotating file in the instance folder (Task Scheduler has no console).

Web requests get a request id: it is in every log line written while serving
the request and in the X-Request-ID response header, so an admin can find
the lines of a user's failed request.
"""

import logging
import logging.handlers
import os
import re
import secrets

from flask import g, has_request_context, request

FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Put the current request's id (or "-") on every record."""

    def filter(self, record):
        """Add request_id to the record."""
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure(instance_path, file_name, level=logging.INFO):
    """Send pacs_lite's and waitress's records to stderr and to instance/logs/<file_name>, rotated at 5 MB."""
    logger = logging.getLogger("pacs_lite")
    if getattr(logger, "_pacs_lite_configured", False):
        return
    folder = os.path.join(instance_path, "logs")
    os.makedirs(folder, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        os.path.join(folder, file_name), maxBytes=5_000_000, backupCount=5, encoding="utf-8", delay=True
    )
    handlers = (file_handler, logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RequestIdFilter())
    for name in ("pacs_lite", "waitress"):
        named = logging.getLogger(name)
        named.setLevel(level)
        for handler in handlers:
            named.addHandler(handler)
        named.propagate = False  # waitress sets up the root logger too; say each line once
    logger._pacs_lite_configured = True


def assign_request_id():
    """Give the request an id: the proxy's X-Request-ID when it is sane, else a new one."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if INCOMING_ID.match(incoming) else secrets.token_hex(6)


def send_request_id(response):
    """Tell the client the request's id."""
    response.headers["X-Request-ID"] = g.get("request_id", "")
    return response


def init_app(app):
    """Give every request an id."""
    app.before_request(assign_request_id)
    app.after_request(send_request_id)
