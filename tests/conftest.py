"""Shared fixtures: the app on SQLite and on a real MariaDB, a logged-in client, a private Orthanc."""

import itertools
import re
import time

import pytest

from pacs_lite import create_app, schema
from pacs_lite.clock import utc_now
from pacs_lite.db import connect, forget_thread_connections
from pacs_lite.orthanc import forget_thread_clients
from tests.mariadb_server import MariaDBServer

FAST_BCRYPT_ROUNDS = 4  # the app's default is 12; the tests check that default once
DATABASES = ("sqlite", "mariadb")
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """A real MariaDB server for the whole test run."""
    with MariaDBServer(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """An empty database, once on SQLite and once on MariaDB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pacs_lite.db'}"
    else:
        server = request.getfixturevalue("mariadb")
        name = f"pacs_test_{next(_database_numbers)}"
        yield server.create_database(name)
        forget_thread_connections()
        server.drop_database(name)
    forget_thread_connections()


@pytest.fixture
def app(database_url, tmp_path):
    """The app over an initialised database."""
    app = create_app(
        {"DATABASE_URL": database_url, "BCRYPT_ROUNDS": FAST_BCRYPT_ROUNDS, "TESTING": True},
        instance_path=str(tmp_path / "instance"),
    )
    schema.init_db(connect(database_url))
    yield app
    forget_thread_clients()


@pytest.fixture
def db(app):
    """A connection to the app's database."""
    return connect(app.config["DATABASE_URL"])


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


def csrf_token(client, path="/auth/login"):
    """Fetch a page and return the CSRF token in its form."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, username, password, remember=False, next_url="", environ=None):
    """Post the login form the way a browser does; return the response."""
    form = {"username": username, "password": password, "csrf_token": csrf_token(client), "next": next_url}
    if remember:
        form["remember"] = "1"
    return client.post("/auth/login", data=form, environ_base=environ or {})


def make_user(app, username="alice", password="correct horse battery", role="radiologist", **fields):
    """Create a user through the app's own account code; return its id."""
    from pacs_lite import accounts

    with app.app_context():
        return accounts.create_account(
            connect(app.config["DATABASE_URL"]), app.config, username, password, role, utc_now(), **fields
        )


@pytest.fixture(scope="session")
def sample_plan():
    """The plan of the default sample studies (seed 0)."""
    from pacs_lite.sample_data import sample_plan

    return sample_plan(seed=0)


@pytest.fixture(scope="session")
def sample_orthanc(tmp_path_factory, sample_plan):
    """A real Orthanc holding the default sample studies; tests must not change it."""
    from pacs_lite.orthanc import OrthancClient
    from pacs_lite.orthanc_server import OrthancServer
    from pacs_lite.sample_data import iter_sample_files, upload_files

    with OrthancServer(tmp_path_factory.mktemp("orthanc-samples")) as server:
        with OrthancClient(server.url, server.username, server.password) as client:
            upload_files(iter_sample_files(plan=sample_plan), client)
            # Orthanc writes Stable* changes StableAge seconds later; let the feed settle first.
            deadline = time.monotonic() + 60
            while not all(study["IsStable"] for study in client.studies_page(0, 1000)):
                assert time.monotonic() < deadline, "the sample studies never became stable"
                time.sleep(0.2)
        yield server
        server.stop(kill=True)  # its storage is thrown away; no need for a clean shutdown


@pytest.fixture
def empty_orthanc(tmp_path):
    """A real Orthanc of this test's own, empty at the start."""
    from pacs_lite.orthanc_server import OrthancServer

    with OrthancServer(tmp_path / "orthanc") as server:
        yield server
        server.stop(kill=True)


def point_at(app, server):
    """Configure the app to use a test Orthanc; return an OrthancClient for it."""
    from pacs_lite.orthanc import client_from_config

    app.config.update(ORTHANC_URL=server.url, ORTHANC_USERNAME=server.username, ORTHANC_PASSWORD=server.password)
    return client_from_config(app.config)


def made_up_study(patient, number, date, modalities):
    """Return an Orthanc-shaped study of a made-up patient, and its series (one per modality)."""
    study_id = f"{number:08x}-{patient * 8}-{patient * 8}-{patient * 8}-{patient * 8}"
    tags = {"StudyInstanceUID": f"2.25.{ord(patient)}.{number}", "StudyDate": date}
    series = [{"ID": f"{study_id[:-1]}{i}", "ParentStudy": study_id, "Instances": ["x"],
               "MainDicomTags": {"Modality": modality, "SeriesNumber": str(i + 1)}}
              for i, modality in enumerate(modalities)]
    study = {"ID": study_id, "ParentPatient": patient * 8 + f"-{patient * 8}" * 4, "MainDicomTags": tags,
             "PatientMainDicomTags": {"PatientID": patient.upper(), "PatientName": f"{patient.upper()}^TEST"}}
    return study, series
