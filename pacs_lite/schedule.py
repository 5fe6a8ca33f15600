"""Scheduled tasks: sync every 5 minutes, session cleanup at 02:00, a backup at 03:00.

On Windows they are Task Scheduler entries made with schtasks; on Linux a
file in /etc/cron.d. Every task runs `python -m pacs_lite --instance <folder>
<command>`, so it finds the same settings as the admin's own commands.
"""

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

TASK_FOLDER = "pacs_lite"
CRON_FILE = "/etc/cron.d/pacs_lite"


@dataclass(frozen=True)
class Task:
    """One scheduled command."""

    name: str
    command: tuple  # pacs-lite arguments
    every_minutes: int = 0  # run every N minutes, or
    daily_at: str = ""  # once a day at HH:MM, or
    at_boot: bool = False  # once when the machine starts (a long-running follower)


def tasks(follow=False):
    """Return the tasks to schedule; with follow, a follower started at boot instead of the 5-minute sync."""
    sync_task = Task("Sync follower", ("sync", "--follow"), at_boot=True) if follow else Task(
        "Sync", ("sync",), every_minutes=5)
    return [
        sync_task,
        Task("Clean sessions", ("clean-sessions",), daily_at="02:00"),
        Task("Backup", ("backup",), daily_at="03:00"),
    ]


def task_arguments(python, instance, task):
    """Return the program and arguments one task runs."""
    return [python, "-m", "pacs_lite", "--instance", instance, *task.command]


def windows_create(python, instance, task):
    """Return the schtasks arguments that create (or replace) one task, run as SYSTEM."""
    run = subprocess.list2cmdline(task_arguments(python, instance, task))
    args = ["schtasks", "/Create", "/F", "/RU", "SYSTEM", "/TN", f"{TASK_FOLDER}\\{task.name}", "/TR", run]
    if task.at_boot:
        return args + ["/SC", "ONSTART"]
    if task.every_minutes:
        return args + ["/SC", "MINUTE", "/MO", str(task.every_minutes)]
    return args + ["/SC", "DAILY", "/ST", task.daily_at]


def windows_delete(task):
    """Return the schtasks arguments that delete one task."""
    return ["schtasks", "/Delete", "/F", "/TN", f"{TASK_FOLDER}\\{task.name}"]


def cron_time(task):
    """Return the five cron time fields of a task."""
    if task.at_boot:
        return "@reboot"
    if task.every_minutes:
        return f"*/{task.every_minutes} * * * *"
    hour, minute = task.daily_at.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def cron_file(python, instance, user, follow=False):
    """Return the text of the /etc/cron.d file for the tasks."""
    log = os.path.join(instance, "logs", "cron.log")
    lines = ["# pacs_lite scheduled tasks, written by 'pacs-lite schedule install'.", "SHELL=/bin/sh", ""]
    for task in tasks(follow):
        command = " ".join(shlex.quote(a) for a in task_arguments(python, instance, task))
        # cron reads % as a newline: escape it.
        line = f"{cron_time(task)} {user} {command} >> {shlex.quote(log)} 2>&1".replace("%", "\\%")
        lines.append(line)
    return "\n".join(lines) + "\n"


def show(platform, python, instance, user, follow=False):
    """Return what install would do, as text an admin can also run by hand."""
    if platform == "windows":
        return "\n".join(subprocess.list2cmdline(windows_create(python, instance, t)) for t in tasks(follow))
    return f"# {CRON_FILE}\n" + cron_file(python, instance, user, follow)


def install(platform, python, instance, user, follow=False, cron_path=CRON_FILE):
    """Create the scheduled tasks; return a line per task for the admin."""
    os.makedirs(os.path.join(instance, "logs"), exist_ok=True)
    if platform == "windows":
        subprocess.run(windows_delete(tasks(not follow)[0]), capture_output=True)  # the other way to sync
        for task in tasks(follow):
            subprocess.run(windows_create(python, instance, task), check=True, capture_output=True)
        return [f"Task Scheduler: {TASK_FOLDER}\\{t.name}" for t in tasks(follow)]
    with open(cron_path, "w", encoding="utf-8") as f:
        f.write(cron_file(python, instance, user, follow))
    return [f"cron: {cron_path}"]


def remove(platform, cron_path=CRON_FILE):
    """Delete the scheduled tasks; return a line per task removed."""
    if platform == "windows":
        removed = []
        for task in tasks(False) + tasks(True)[:1]:
            if subprocess.run(windows_delete(task), capture_output=True).returncode == 0:
                removed.append(f"Task Scheduler: {TASK_FOLDER}\\{task.name}")
        return removed
    if os.path.exists(cron_path):
        os.remove(cron_path)
        return [f"cron: {cron_path}"]
    return []


def current_platform():
    """Return "windows" or "linux" (any other POSIX system uses cron too)."""
    return "windows" if sys.platform.startswith("win") else "linux"
