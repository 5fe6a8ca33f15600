"""pacs_lite: a web front-end for the Orthanc PACS, for small clinics on one server."""

import os
import sys

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from pacs_lite import assets, config, db, errors, logs, security
from pacs_lite.resources import resource_path

csrf = CSRFProtect()


def create_app(overrides=None, instance_path=None):
    """Build the Flask app: defaults, instance config file, PACS_LITE_* variables, then overrides."""
    app = Flask(
        __name__,
        instance_path=instance_folder(instance_path),
        instance_relative_config=True,
        template_folder=str(resource_path("templates")),
        static_folder=str(resource_path("static")),
    )
    config.load(app, overrides)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # the token lives as long as the browser session

    db.init_app(app)
    security.init_app(app)
    assets.init_app(app)
    logs.init_app(app)
    errors.init_app(app)
    csrf.init_app(app)

    from pacs_lite.admin import bp as admin_bp
    from pacs_lite.api import bp as api_bp
    from pacs_lite.auth import bp as auth_bp
    from pacs_lite.auth import current_user
    from pacs_lite.pages import bp as pages_bp

    current_user.init_app(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(admin_bp)
    return app


def instance_folder(explicit=None):
    """Return the instance folder: given, PACS_LITE_INSTANCE_PATH, ./instance in a checkout, else <prefix>/var."""
    if explicit or os.environ.get("PACS_LITE_INSTANCE_PATH"):
        return os.path.abspath(explicit or os.environ["PACS_LITE_INSTANCE_PATH"])
    checkout = resource_path("schema.sql").parent
    if (checkout / "setup.cfg").exists():
        return str(checkout / "instance")
    return os.path.join(sys.prefix, "var", "pacs_lite-instance")
