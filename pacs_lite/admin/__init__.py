"""The admin blueprint: users, the audit log and the sync status, for role admin only."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")


def utc_text(value, empty="—"):
    """Show a naive UTC datetime to the second, or empty when there is none."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else empty


@bp.context_processor
def formatting_helpers():
    """Give the admin templates their formatting helpers."""
    return {"utc_text": utc_text}


from pacs_lite.admin import audit_routes, sync_routes, user_routes  # noqa: E402,F401  (routes attach to bp)
