"""Error answers: JSON for /api/*, a plain page elsewhere; never a traceback."""

import logging

from flask import current_app, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from pacs_lite.db import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE_DOWN = "The database is not reachable. Try again in a minute; if it lasts, tell your administrator."


def error_response(status, message):
    """Answer an error in the form the caller expects."""
    if request.path.startswith("/api/"):
        return jsonify(success=False, error=message), status
    return render_template("error.html", status=status, message=message), status


def handle_http_error(error):
    """Answer a routing or view error (404, 405, 400, 403...)."""
    return error_response(error.code, error.description)


def handle_csrf_error(error):
    """Answer a form posted without a valid CSRF token."""
    return error_response(400, "The form expired or did not come from this site. Reload the page and try again.")


def handle_database_down(error):
    """Answer 503 when the database cannot be reached."""
    log.error("database unavailable: %s", error)
    # Flask-Login would ask the database for the user again while rendering the page.
    g._login_user = current_app.login_manager.anonymous_user()
    return error_response(503, DATABASE_DOWN)


def handle_unexpected(error):
    """Log an unexpected error and answer 500 without details."""
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "Something went wrong on the server. It was logged; try again.")


def init_app(app):
    """Register the error handlers."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DatabaseUnavailable, handle_database_down)
    app.register_error_handler(Exception, handle_unexpected)
