"""The WSGI entry point: `waitress-serve wsgi:app`, or any WSGI server."""

from pacs_lite import create_app

app = create_app()
