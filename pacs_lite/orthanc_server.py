"""A private Orthanc process, for `pacs-lite demo` and for the tests.

`OrthancServer(folder)` writes an Orthanc config into `folder` (its own
storage and index, a loopback port, HTTP basic auth, no DICOM server) and
runs the installed Orthanc on it (Debian: `apt-get install orthanc`). Faults
are real too: `stop()` and `start()` restart the process on the same storage
and port, `pause()` and `resume()` stall it with SIGSTOP/SIGCONT.

    with OrthancServer(tmp_path) as orthanc:
        client = OrthancClient(orthanc.url, orthanc.username, orthanc.password)

It checks readiness with urllib, not with pacs_lite's client, so a broken
client cannot break the tests' server.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ORTHANC_BINARIES = ("Orthanc", "/usr/sbin/Orthanc", r"C:\Program Files\Orthanc Server\Orthanc.exe")
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_loopback_port():
    """Return a TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path, lines=30):
    """Return the last lines of a log file, or a note that there is none."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no Orthanc log was written)"
    return "\n".join(text.splitlines()[-lines:])


def find_orthanc():
    """Return the path of the Orthanc program, or raise with how to install it."""
    for candidate in ORTHANC_BINARIES:
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if found:
            return found
    raise OrthancServerError(
        "Orthanc is not installed: on Debian or Ubuntu run 'apt-get install orthanc'; "
        "on Windows use the official installer"
    )


def die_with_parent():
    """Ask Linux to stop this child if its parent process dies (no orphans)."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class OrthancServerError(RuntimeError):
    """Orthanc did not start or stop as asked."""


class OrthancServer:
    """A private Orthanc process with its storage in a temp folder."""

    def __init__(self, folder, dicomweb=False, username="pacs_test",
                 password=None, stable_age=2, port=None, name="pacs_lite_test"):
        """Write the config in folder; the server starts with start() or `with`."""
        self.root = Path(folder)
        self.root.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password or secrets.token_hex(12)
        self.name = name
        self.port = port or free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.config_path = self.root / "orthanc.json"
        self.log_path = self.root / "orthanc.log"
        self.process = None
        self.log_file = None
        self.paused = False
        self.startup_seconds = None
        self.write_config(dicomweb, stable_age)

    def write_config(self, dicomweb, stable_age):
        """Write the Orthanc JSON config for this server."""
        config = {
            "Name": self.name,
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "HttpPort": self.port,
            # Orthanc 1.10 always listens on 0.0.0.0; this refuses other hosts.
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.username: self.password},
            "DicomServerEnabled": False,
            # Debian's Latin1 default mangles names without SpecificCharacterSet.
            "DefaultEncoding": "Utf8",
            "StableAge": stable_age,
            "Plugins": [DICOMWEB_PLUGIN] if dicomweb else [],
        }
        self.config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")

    def __enter__(self):
        """Start the server for a `with` block."""
        self.start()
        return self

    def __exit__(self, *exc_info):
        """Stop the server at the end of a `with` block."""
        self.close()

    @property
    def running(self):
        """Tell whether the Orthanc process is alive (paused counts as alive)."""
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Launch Orthanc (again) on the same storage and port; wait for /system."""
        if self.running:
            return
        self.log_file = open(self.log_path, "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [find_orthanc(), str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.paused = False
        try:
            self.wait_until_up(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def wait_until_up(self, started):
        """Poll /system until Orthanc answers, or raise with the log tail."""
        while time.monotonic() - started < START_TIMEOUT:
            if self.process.poll() is not None:
                raise OrthancServerError(
                    f"Orthanc exited with code {self.process.returncode} while "
                    f"starting; log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if self.answers():
                return
            time.sleep(0.05)
        raise OrthancServerError(
            f"Orthanc did not answer on {self.url} within {START_TIMEOUT:.0f} s; "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def answers(self):
        """Tell whether GET /system answers 200 with our credentials."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.url + "system", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, kill=False):
        """Stop Orthanc (SIGTERM, or SIGKILL to simulate a crash); keep its storage."""
        if self.process is not None:
            if self.process.poll() is None:
                self.resume()
                if kill:
                    self.process.kill()
                else:
                    # A clean shutdown takes Orthanc 1 to 2.5 s.
                    self.process.terminate()
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        self.paused = False
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def pause(self):
        """Stall Orthanc with SIGSTOP: it accepts connections but never answers."""
        if not self.running:
            raise OrthancServerError("cannot pause Orthanc: it is not running")
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        """Let a paused Orthanc run again with SIGCONT."""
        if self.paused and self.running:
            os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def close(self):
        """Stop the server for good; the folder belongs to the caller."""
        self.stop()

    def log(self):
        """Return the Orthanc log written so far, for failing-test messages."""
        return log_tail(self.log_path, lines=200)
