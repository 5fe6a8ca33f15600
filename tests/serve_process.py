"""A real `pacs-lite serve` (waitress) process on a free loopback port, for the tests and the benchmarks."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.mariadb_server import free_port

PACS_LITE = [sys.executable, "-m", "pacs_lite"]
START_TIMEOUT = 60


def environment(instance, database_url):
    """Return the environment of a pacs-lite process with this instance folder and database (fast bcrypt)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PACS_LITE_")}
    environ.update(
        PACS_LITE_INSTANCE_PATH=str(instance),
        PACS_LITE_DATABASE_URL=database_url,
        PACS_LITE_BCRYPT_ROUNDS="4",
    )
    return environ


def orthanc_environment(folder, orthanc, **settings):
    """Return the environment of a pacs-lite on a SQLite file in folder, pointed at a running Orthanc, with more
    PACS_LITE_ settings."""
    env = environment(folder / "instance", f"sqlite:///{folder / 'pacs_lite.db'}")
    env.update(
        PACS_LITE_ORTHANC_URL=orthanc.url,
        PACS_LITE_ORTHANC_USERNAME=orthanc.username,
        PACS_LITE_ORTHANC_PASSWORD=orthanc.password,
        **settings,
    )
    return env


@dataclass
class Server:
    """A running `pacs-lite serve` process."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self):
        """Return what the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """Stop the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until_answering(server, port):
    """Wait until the server accepts connections; raise with its log if it dies or hangs."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"pacs-lite serve exited with {server.process.returncode}:\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pacs-lite serve did not answer within {START_TIMEOUT} s:\n{server.log()}") from None
            time.sleep(0.1)


def start_server(env, log_path, threads=None):
    """Start `pacs-lite serve` on a free port; return the Server once it answers (stopped if it never does)."""
    port = free_port()
    command = [*PACS_LITE, "serve", "--port", str(port)]
    if threads:
        command += ["--threads", str(threads)]
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", Path(log_path))
    try:
        wait_until_answering(server, port)
    except BaseException:
        server.stop()
        raise
    return server
