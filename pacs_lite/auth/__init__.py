"""The auth blueprint: login, logout, check_session."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")

from pacs_lite.auth import routes  # noqa: E402,F401  (routes attach themselves to bp)
