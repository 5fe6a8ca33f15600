"""The pacs-lite command line."""

import functools
import logging
import os
import subprocess
import sys

import click

from pacs_lite import accounts, backup, health, logs, maintenance, passwords, schedule, schema, sync, users
from pacs_lite.clock import utc_now
from pacs_lite.config import ConfigError
from pacs_lite.db import DatabaseUnavailable, close_db, forget_thread_connections, get_db
from pacs_lite.orthanc import OrthancError, client_from_config


log = logging.getLogger(__name__)


class CommandError(Exception):
    """A command cannot go on; the message says why and what to do."""


def with_app(command):
    """Run a command inside the app context; turn known failures into one line and exit code 2."""

    @functools.wraps(command)
    def wrapped(*args, **kwargs):
        from pacs_lite import create_app

        try:
            app = create_app()
            with app.app_context():
                return command(app, *args, **kwargs)
        except (ConfigError, DatabaseUnavailable, accounts.AccountError, CommandError) as e:
            click.echo(f"pacs-lite: error: {e}", err=True)
            sys.exit(2)

    return wrapped


def read_password_from_stdin():
    """Read one password line from standard input."""
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--instance", type=click.Path(file_okay=False),
              help="The instance folder (settings, SQLite database, logs); as PACS_LITE_INSTANCE_PATH.")
def cli(instance):
    """pacs_lite: a web front-end for the Orthanc PACS."""
    if instance:
        os.environ["PACS_LITE_INSTANCE_PATH"] = os.path.abspath(instance)


@cli.command("init-db")
@with_app
def init_db_command(app):
    """Create the database schema, or upgrade it in place. Safe to run again."""
    try:
        before, after = schema.init_db(get_db())
    except RuntimeError as e:
        raise CommandError(str(e)) from None
    where = get_db().url.describe()
    if before == 0:
        click.echo(f"Created the schema (version {after}) in the {where}.")
    elif before < after:
        click.echo(f"Upgraded the schema from version {before} to {after} in the {where}.")
    else:
        click.echo(f"The schema is current (version {after}) in the {where}.")


def require_schema(db):
    """Stop with a clear message when init-db has not been run."""
    if schema.current_version(db) == 0:
        raise CommandError(f"the {db.url.describe()} has no schema yet: run 'pacs-lite init-db' first")


@cli.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(users.ROLES), help="What the user may do.")
@click.option("--full-name", default="", help="The name shown in the header.")
@click.option("--email", default="")
@click.option("--dicom-name", default="", help="For referring doctors: their ReferringPhysicianName, e.g. HOUSE^GREGORY.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of generating one.")
@with_app
def create_user_command(app, username, role, full_name, email, dicom_name, password_stdin):
    """Add a user. Without --password-stdin a one-time password is printed, to be changed at first login."""
    db = get_db()
    require_schema(db)
    password = read_password_from_stdin() if password_stdin else passwords.one_time_password()
    accounts.create_account(
        db, app.config, username, password, role, utc_now(), full_name=full_name, email=email,
        dicom_name=dicom_name, must_change_password=not password_stdin, actor="cli",
    )
    name = accounts.normalize_username(username)
    click.echo(f"Created {role} {name!r}.")
    if not password_stdin:
        click.echo(f"One-time password: {password}")
        click.echo("The user must choose a new password at first login.")


@cli.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of generating one.")
@with_app
def set_password_command(app, username, password_stdin):
    """Reset a user's password and log them out everywhere."""
    db = get_db()
    require_schema(db)
    user = users.get_user_by_username(db, accounts.normalize_username(username))
    if user is None:
        raise CommandError(f"there is no user named {username!r}")
    password = read_password_from_stdin() if password_stdin else passwords.one_time_password()
    accounts.set_password(db, app.config, user, password, utc_now(), must_change_password=not password_stdin,
                          actor="cli")
    click.echo(f"Set a new password for {user['username']!r}; their sessions were ended.")
    if not password_stdin:
        click.echo(f"One-time password: {password}")
        click.echo("The user must choose a new password at next login.")


@cli.command("clean-sessions")
@with_app
def clean_sessions_command(app):
    """Delete expired sessions, old login failures and audit rows past AUDIT_RETENTION_DAYS."""
    db = get_db()
    require_schema(db)
    logs.configure(app.instance_path, "tasks.log")
    removed = maintenance.clean(db, app.config, utc_now())
    log.info("clean-sessions removed %s", removed)
    click.echo(
        f"Removed {removed['sessions']} expired sessions, {removed['login_failures']} old login failures "
        f"and {removed['audit_rows']} audit rows older than {app.config['AUDIT_RETENTION_DAYS']} days."
    )


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for the whole network).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@with_app
def serve_command(app, host, port, threads):
    """Serve the app with waitress."""
    import waitress

    logs.configure(app.instance_path, "app.log")
    require_schema(get_db())
    close_db()  # end the check's transaction: an open one would hold table locks while serving
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"pacs_lite serving on http://{shown_host}:{port}/ (Ctrl-C stops it)")
    waitress.serve(app, host=host, port=port, threads=threads, ident="pacs_lite")


def progress_bar(enabled):
    """Return a progress(done, total) callback drawing a bar on a terminal, or None; and a closer."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit="study", leave=False)

    def progress(done, total):
        """Move the bar to done of total."""
        bar.total = total
        bar.n = done
        bar.refresh()

    return progress, bar.close


@cli.command("sync")
@click.option("--full", is_flag=True, help="Re-read every study and drop what Orthanc no longer has.")
@click.option("--follow", is_flag=True, help="Keep running, polling Orthanc's changes every --interval seconds.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.2, 3600),
              help="Seconds between polls with --follow.")
@with_app
def sync_command(app, full, follow, interval):
    """Bring the cache up to date with Orthanc (one pass, for Task Scheduler or cron)."""
    logs.configure(app.instance_path, "sync.log")
    db = get_db()
    require_schema(db)
    orthanc = client_from_config(app.config)
    url = app.config["DATABASE_URL"]
    if follow:
        click.echo(f"Following Orthanc at {app.config['ORTHANC_URL']} every {interval:g} s (Ctrl-C stops).")
        try:
            sync.follow(orthanc, url, interval, app.config["SYNC_DELETION_CHECK_MINUTES"] * 60)
        except KeyboardInterrupt:
            click.echo("Stopped following.")
        except sync.SchemaMismatch as e:
            raise CommandError(f"stopped following: {e}") from None
        return
    progress, close_bar = progress_bar(sys.stdout.isatty())
    try:
        result = sync.sync_once(db, orthanc, url, full=full, progress=progress)
    except sync.SyncBusy:
        click.echo("Another sync is running; this one has nothing to do.")
        return
    except sync.SchemaMismatch as e:
        raise CommandError(str(e)) from None
    except OrthancError as e:
        click.echo(f"pacs-lite: error: sync failed, the cache is unchanged since the last pass: {e.message}", err=True)
        sys.exit(1)
    finally:
        close_bar()
    click.echo(result.summary().capitalize())


@cli.command("check")
@with_app
def check_command(app):
    """Check the installation: database, schema, Orthanc, cache freshness, admins, disk. Exit 1 on any FAIL."""
    checks = health.run_checks(app.config, app.instance_path)
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if c.status == "FAIL"]
    click.echo(f"{len(failed)} failed, {sum(c.status == 'WARN' for c in checks)} warnings, "
               f"{sum(c.status == 'PASS' for c in checks)} passed.")
    if failed:
        sys.exit(1)


@cli.command("backup")
@click.option("--to", "folder", type=click.Path(file_okay=False), help="Folder for the backup (default BACKUP_DIR).")
@with_app
def backup_command(app, folder):
    """Back up the database (users, audit, sessions, cache); keep the newest BACKUP_KEEP backups."""
    logs.configure(app.instance_path, "tasks.log")
    folder = folder or backup.backup_folder(app.config, app.instance_path)
    try:
        path = backup.make_backup(app.config["DATABASE_URL"], folder, utc_now(), app.config["BACKUP_KEEP"])
    except backup.BackupError as e:
        raise CommandError(str(e)) from None
    log.info("backup written to %s", path)
    click.echo(f"Backed up the {get_db().url.describe()} to {path} ({path.stat().st_size} bytes).")


@cli.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_app
def restore_command(app, backup_file, yes):
    """Replace the database's content with a backup, then upgrade its schema if it is older."""
    where = get_db().url.describe()
    if not yes and not click.confirm(f"Replace everything in the {where} with {backup_file}?"):
        raise CommandError("not restored (answer yes, or pass --yes)")
    close_db()
    forget_thread_connections()  # SQLite's backup API wants no other connection writing
    try:
        backup.restore_backup(app.config["DATABASE_URL"], backup_file)
    except backup.BackupError as e:
        raise CommandError(str(e)) from None
    before, after = schema.init_db(get_db())
    upgraded = f"; upgraded its schema from version {before} to {after}" if before != after else ""
    click.echo(f"Restored {backup_file} into the {where}{upgraded}.")


@cli.command("schedule")
@click.argument("action", type=click.Choice(["show", "install", "remove"]))
@click.option("--follow", is_flag=True, help="A sync follower started at boot instead of a sync every 5 minutes.")
@click.option("--os", "platform", type=click.Choice(["windows", "linux"]), default=schedule.current_platform(),
              show_default=True, help="Which scheduler to write for (show only; install uses this machine's).")
@click.option("--user", default="root", show_default=True, help="cron: the user the tasks run as.")
@click.option("--cron-file", default=schedule.CRON_FILE, show_default=True, type=click.Path(dir_okay=False))
@with_app
def schedule_command(app, action, follow, platform, user, cron_file):
    """Show, install or remove the scheduled sync, session cleanup (02:00) and backup (03:00)."""
    python, instance = sys.executable, app.instance_path
    if action == "show":
        click.echo(schedule.show(platform, python, instance, user, follow))
        return
    platform = schedule.current_platform()
    try:
        if action == "install":
            done = schedule.install(platform, python, instance, user, follow, cron_file)
            click.echo("Scheduled:\n  " + "\n  ".join(done))
        else:
            done = schedule.remove(platform, cron_file)
            click.echo("Removed:\n  " + "\n  ".join(done) if done else "No scheduled tasks to remove.")
    except (OSError, subprocess.CalledProcessError) as e:
        raise CommandError(f"could not {action} the scheduled tasks: {e} (run as administrator/root)") from None


@cli.command("setup")
@click.option("--database-url", help="Default: a SQLite file in the instance folder.")
@click.option("--orthanc-url", help="Default: http://127.0.0.1:8042")
@click.option("--orthanc-username")
@click.option("--orthanc-password")
@click.option("--admin", "admin_name", default="admin", show_default=True, help="The first admin's username.")
@click.option("--schedule/--no-schedule", "with_schedule", default=False, show_default=True,
              help="Also install the scheduled sync, cleanup and backup (needs administrator/root).")
@click.option("--non-interactive", is_flag=True, help="Ask nothing; use the options and what is configured.")
def setup_command(database_url, orthanc_url, orthanc_username, orthanc_password, admin_name, with_schedule,
                  non_interactive):
    """Install on this server: write the settings, create the schema and the first admin, schedule the tasks."""
    from pacs_lite import instance_folder, setup_install

    path = setup_install.config_path(instance_folder())
    try:
        existing = setup_install.read_settings(path)
    except (OSError, ValueError) as e:
        click.echo(f"pacs-lite: error: cannot read {path}: {e}; fix or delete it", err=True)
        sys.exit(2)
    given = {"DATABASE_URL": database_url, "ORTHANC_URL": orthanc_url, "ORTHANC_USERNAME": orthanc_username,
             "ORTHANC_PASSWORD": orthanc_password}
    if not non_interactive and sys.stdin.isatty():
        defaults = {"DATABASE_URL": "", "ORTHANC_URL": "http://127.0.0.1:8042", "ORTHANC_USERNAME": "",
                    "ORTHANC_PASSWORD": ""}
        for name in setup_install.SETTING_NAMES:
            if given[name] is None:
                given[name] = click.prompt(f"{name} (empty for the default)", default=existing.get(name, defaults[name]),
                                           show_default=name != "ORTHANC_PASSWORD",
                                           hide_input=name == "ORTHANC_PASSWORD")
    setup_install.write_settings(path, setup_install.merge_settings(existing, given))
    click.echo(f"Wrote the settings to {path}.")
    finish_setup(admin_name, with_schedule)


@with_app
def finish_setup(app, admin_name, with_schedule):
    """Create the schema and the first admin, check Orthanc, and schedule the tasks if asked."""
    db = get_db()
    before, after = schema.init_db(db)
    click.echo(f"Database: {db.url.describe()}, schema version {after}" + (" (created)." if before == 0 else "."))
    if users.count_active_admins(db):
        click.echo("An active admin exists already; no admin created.")
    else:
        password = passwords.one_time_password()
        accounts.create_account(db, app.config, admin_name, password, "admin", utc_now(), full_name="Administrator",
                                must_change_password=True, actor="setup")
        click.echo(f"Created the admin {admin_name!r} with the one-time password: {password}")
        click.echo("It must be changed at the first login.")
    orthanc_check = health.check_orthanc(app.config)
    click.echo(orthanc_check.line())
    if with_schedule:
        done = schedule.install(schedule.current_platform(), sys.executable, app.instance_path, "root")
        click.echo("Scheduled: " + ", ".join(done))
    click.echo("Next: 'pacs-lite sync' to fill the cache, 'pacs-lite serve --host 0.0.0.0' to serve, "
               "'pacs-lite check' to check everything.")


@cli.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@with_app
def demo_command(app, host, port, threads):
    """Try pacs_lite in one command: Orthanc with sample studies, the cache, an admin login, the server."""
    from pacs_lite import demo
    from pacs_lite.orthanc_server import OrthancServerError
    from pacs_lite.sample_data import UploadError

    logs.configure(app.instance_path, "demo.log")
    try:
        demo.run(app, host, port, threads)
    except (OrthancServerError, OrthancError, UploadError) as e:
        raise CommandError(str(e)) from None


def main(argv=None):
    """Run the command line."""
    return cli.main(args=argv, prog_name="pacs-lite")
