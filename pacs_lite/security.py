"""HTTP hardening: security headers, MIME types on every OS, secure cookies behind HTTPS."""

import mimetypes

from flask import request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session (it carries the CSRF token), Secure whenever served over HTTPS."""

    def get_cookie_secure(self, app):
        """Mark the cookie Secure when the request came over HTTPS."""
        return request.is_secure

    def save_session(self, app, session, response):
        """Save the session; a static file, the same for everyone, does not vary with the cookie.

        Flask-Login reads the session after every request, which makes Flask add
        `Vary: Cookie`; browsers would then fetch cached scripts and styles again
        whenever the cookie changes, after each login for one.
        """
        super().save_session(app, session, response)
        if request.endpoint == "static":
            others = [header for header in response.vary if header.lower() != "cookie"]
            response.headers.remove("Vary")
            if others:
                response.headers["Vary"] = ", ".join(others)


def add_security_headers(response):
    """Add the security headers to every response."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app):
    """Apply the hardening to the app."""
    # Windows maps .js to text/plain in some registries; browsers then refuse modules and workers.
    mimetypes.add_type("text/javascript", ".js")
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    mimetypes.add_type("text/css", ".css")
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="pacs_lite_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if app.config["TRUST_PROXY"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.after_request(add_security_headers)
