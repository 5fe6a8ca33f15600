"""The api blueprint: JSON for the worklist, the study browser and the viewer (see docs/api.md)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from pacs_lite.api import images, patients  # noqa: E402,F401  (routes attach themselves to bp)
