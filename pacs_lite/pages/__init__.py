"""The pages blueprint: the worklist, study browser, viewer and account pages."""

from flask import Blueprint

bp = Blueprint("pages", __name__)

from pacs_lite.pages import routes  # noqa: E402,F401  (routes attach themselves to bp)
