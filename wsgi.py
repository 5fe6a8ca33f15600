"""The WSGI entry point: `waitress-serve wsgi:app`, or any WSGI server."""

from pacs_lite import create_app, logs

app = create_app()
logs.configure(app.instance_path, "app.log")
