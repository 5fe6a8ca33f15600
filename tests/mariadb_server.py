"""A private MariaDB server for the tests: Debian's mariadbd on a temp datadir and a free loopback port."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pymysql

USER = "pacs_test"
PASSWORD = "pacs-test-password"


def free_port():
    """Return a TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDBServer:
    """Start mariadbd in a temp folder; create databases for tests; stop it at the end."""

    def __init__(self, directory, buffer_pool="256M"):
        self.directory = os.path.abspath(directory)
        self.buffer_pool = buffer_pool  # InnoDB's page cache: the tests' databases are small
        self.datadir = os.path.join(self.directory, "data")
        self.socket = os.path.join(self.directory, "mysqld.sock")
        self.log_path = os.path.join(self.directory, "mariadbd.log")
        self.port = free_port()
        self.process = None
        self._log = None

    def start(self):
        """Initialise the datadir if needed, start the server, and wait until it answers."""
        if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")):
            raise RuntimeError("mariadbd is not installed: apt-get install mariadb-server")
        if not os.path.isdir(self.datadir):
            os.makedirs(self.datadir)
            subprocess.run(
                ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                 "--auth-root-authentication-method=socket", "--skip-test-db"],
                check=True, capture_output=True, timeout=120,
            )
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve",
             f"--innodb-buffer-pool-size={self.buffer_pool}", "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin",
             f"--pid-file={os.path.join(self.directory, 'mariadbd.pid')}", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_unicode_ci", "--max-connections=500"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        # mariadbd makes its socket once it accepts connections; trying pymysql earlier leaks sockets.
        while not os.path.exists(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MariaDB did not start; see {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.1)
        self.root_execute(f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        self.root_execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'")
        return self

    def log_tail(self, lines=20):
        """Return the end of the server log."""
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")

    def root_execute(self, sql):
        """Run one statement as root over the unix socket."""
        conn = pymysql.connect(unix_socket=self.socket, user="root", connect_timeout=2)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def create_database(self, name):
        """Create an empty database and return its DATABASE_URL."""
        self.root_execute(f"DROP DATABASE IF EXISTS `{name}`")
        self.root_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        return self.url(name)

    def drop_database(self, name):
        """Drop a database made by create_database."""
        self.root_execute(f"DROP DATABASE IF EXISTS `{name}`")

    def url(self, name):
        """Return the DATABASE_URL of a database on this server."""
        return f"mysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def pause(self):
        """Stall the server (SIGSTOP): connections hang as with a frozen host."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        """Let a paused server run again."""
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        """Stop the server and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
