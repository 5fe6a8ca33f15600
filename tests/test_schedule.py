"""`pacs-lite schedule`: the exact Task Scheduler and cron entries, and installing them on Linux."""

import os
import subprocess
import sys

from pacs_lite import schedule

PYTHON = r"C:\Program Files\pacs_lite\.venv\Scripts\python.exe"
INSTANCE = r"D:\PACS data\instance"


def test_windows_entries_are_exact_with_paths_with_spaces_quoted():
    assert schedule.show("windows", PYTHON, INSTANCE, "root").splitlines() == [
        r'schtasks /Create /F /RU SYSTEM /TN pacs_lite\Sync /TR "\"C:\Program Files\pacs_lite\.venv\Scripts\python.exe\" '
        r'-m pacs_lite --instance \"D:\PACS data\instance\" sync" /SC MINUTE /MO 5',
        r'schtasks /Create /F /RU SYSTEM /TN "pacs_lite\Clean sessions" /TR "\"C:\Program Files\pacs_lite\.venv\Scripts'
        r'\python.exe\" -m pacs_lite --instance \"D:\PACS data\instance\" clean-sessions" /SC DAILY /ST 02:00',
        r'schtasks /Create /F /RU SYSTEM /TN pacs_lite\Backup /TR "\"C:\Program Files\pacs_lite\.venv\Scripts\python.exe\" '
        r'-m pacs_lite --instance \"D:\PACS data\instance\" backup" /SC DAILY /ST 03:00',
    ]


def test_windows_follower_starts_at_boot_and_tasks_can_be_deleted():
    follower = schedule.windows_create(PYTHON, INSTANCE, schedule.tasks(follow=True)[0])
    assert follower[-2:] == ["/SC", "ONSTART"] and follower[-3].endswith(" sync --follow")
    assert schedule.windows_delete(schedule.tasks()[1]) == ["schtasks", "/Delete", "/F", "/TN",
                                                            "pacs_lite\\Clean sessions"]


def test_the_cron_file_is_exact():
    text = schedule.cron_file("/opt/pacs lite/.venv/bin/python", "/var/lib/pacs 50%", "pacs")
    assert text.splitlines()[3:] == [
        r"*/5 * * * * pacs '/opt/pacs lite/.venv/bin/python' -m pacs_lite --instance '/var/lib/pacs 50\%' sync "
        r">> '/var/lib/pacs 50\%/logs/cron.log' 2>&1",
        r"0 2 * * * pacs '/opt/pacs lite/.venv/bin/python' -m pacs_lite --instance '/var/lib/pacs 50\%' clean-sessions "
        r">> '/var/lib/pacs 50\%/logs/cron.log' 2>&1",
        r"0 3 * * * pacs '/opt/pacs lite/.venv/bin/python' -m pacs_lite --instance '/var/lib/pacs 50\%' backup "
        r">> '/var/lib/pacs 50\%/logs/cron.log' 2>&1",
    ]
    assert schedule.cron_file("/p", "/i", "root", follow=True).splitlines()[3].startswith("@reboot root /p -m")


def test_install_and_remove_on_linux(tmp_path):
    cron = tmp_path / "cron.d" / "pacs_lite"
    cron.parent.mkdir()
    instance = tmp_path / "my instance"
    env = dict(os.environ)
    env.pop("PACS_LITE_INSTANCE_PATH", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pacs_lite", "--instance", str(instance), "schedule", *args,
                               "--cron-file", str(cron)], capture_output=True, text=True, env=env, timeout=60)

    result = run("install")
    assert result.returncode == 0, result.stderr
    assert f"cron: {cron}" in result.stdout
    assert cron.read_text() == schedule.cron_file(sys.executable, str(instance), "root")
    assert (instance / "logs").is_dir()
    # The scheduled command itself works: it finds the instance folder it was given.
    line = cron.read_text().splitlines()[3]
    command = line.split(" root ", 1)[1].split(" >> ", 1)[0].replace(" sync", " check")
    check = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert f"instance folder {instance}" in check.stdout
    assert run("remove").stdout.startswith("Removed:") and not cron.exists()
    assert run("remove").stdout.strip() == "No scheduled tasks to remove."
