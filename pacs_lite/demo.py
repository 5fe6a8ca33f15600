"""`pacs-lite demo`: a newcomer's one command — Orthanc with sample studies, the cache, an admin, the server."""

import secrets
import threading
from pathlib import Path

import click

from pacs_lite import accounts, passwords, schema, sync, users
from pacs_lite.clock import utc_now
from pacs_lite.db import close_db, get_db
from pacs_lite.orthanc import OrthancError, client_from_config
from pacs_lite.orthanc_server import OrthancServer
from pacs_lite.sample_data import iter_sample_files, sample_plan, upload_files

ADMIN = "admin"


def running_orthanc(app):
    """Return the configured Orthanc if it answers with our credentials, else None."""
    client = client_from_config(app.config)
    try:
        client.system()
        return client
    except OrthancError:
        client.close()
        return None


def start_private_orthanc(app):
    """Start an Orthanc of the demo's own, storage in the instance folder; point the app at it."""
    folder = Path(app.instance_path) / "demo-orthanc"
    folder.mkdir(parents=True, exist_ok=True)
    password_file = folder / "password"
    if not password_file.exists():
        password_file.write_text(secrets.token_hex(16))
    server = OrthancServer(folder, username="pacs_lite", password=password_file.read_text().strip(),
                           stable_age=5, name="pacs_lite_demo")
    server.start()
    app.config.update(ORTHANC_URL=server.url, ORTHANC_USERNAME=server.username, ORTHANC_PASSWORD=server.password)
    return server


def load_samples(orthanc):
    """Upload the sample studies when Orthanc holds no study yet."""
    if orthanc.study_ids():
        click.echo("Orthanc already holds studies; no samples loaded.")
        return
    plan = sample_plan()
    click.echo(f"Loading {plan.instance_count} sample images of {len(plan.patients)} patients into Orthanc...")
    counts = upload_files(iter_sample_files(plan=plan), orthanc)
    click.echo(f"Loaded {counts['stored']} images.")


def ensure_admin(app, db):
    """Create the admin with a one-time password unless one exists; return the password or None."""
    if users.get_user_by_username(db, ADMIN):
        return None
    password = passwords.one_time_password()
    accounts.create_account(db, app.config, ADMIN, password, "admin", utc_now(), full_name="Administrator",
                            must_change_password=True, actor="demo")
    return password


def run(app, host, port, threads):
    """Set everything up, then serve until Ctrl-C; stop what was started."""
    import waitress

    db = get_db()
    schema.init_db(db)
    orthanc = running_orthanc(app)
    server = None
    if orthanc:
        click.echo(f"Using the Orthanc at {app.config['ORTHANC_URL']}.")
    else:
        server = start_private_orthanc(app)
        orthanc = client_from_config(app.config)
        click.echo(f"Started a private Orthanc at {server.url} (storage in {server.root}).")
    stop = threading.Event()
    follower = None
    try:
        load_samples(orthanc)
        result = sync.sync_once(db, orthanc, app.config["DATABASE_URL"])
        click.echo(result.summary().capitalize())
        password = ensure_admin(app, db)
        close_db()  # commit is done; no transaction may stay open while serving
        follower = threading.Thread(
            target=sync.follow,
            args=(orthanc, app.config["DATABASE_URL"], 2.0, app.config["SYNC_DELETION_CHECK_MINUTES"] * 60),
            kwargs={"should_stop": stop.is_set, "sleep": stop.wait},
            name="sync-follower",
            daemon=True,
        )
        follower.start()
        web_server = waitress.create_server(app, host=host, port=port, threads=threads, ident="pacs_lite")
        address = f"http://{host}:{port}/"
        if password:
            click.echo(f"Open {address} and log in as {ADMIN!r} with the one-time password {password}")
            click.echo("(you will be asked to choose your own password).")
        else:
            click.echo(f"Open {address} and log in as {ADMIN!r} (forgot it? pacs-lite set-password {ADMIN}).")
        click.echo("Ctrl-C stops the server, the sync follower and the demo Orthanc.")
        web_server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if follower:
            follower.join(timeout=10)
        orthanc.close()
        if server:
            server.close()
        click.echo("Demo stopped.")
