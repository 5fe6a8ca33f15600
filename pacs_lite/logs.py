"""Logging to stderr and to a rotating file in the instance folder (Task Scheduler has no console)."""

import logging
import logging.handlers
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(instance_path, file_name, level=logging.INFO):
    """Send pacs_lite's log records to stderr and to instance/logs/<file_name>, rotated at 5 MB."""
    logger = logging.getLogger("pacs_lite")
    if getattr(logger, "_pacs_lite_configured", False):
        return
    logger.setLevel(level)
    folder = os.path.join(instance_path, "logs")
    os.makedirs(folder, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        os.path.join(folder, file_name), maxBytes=5_000_000, backupCount=5, encoding="utf-8", delay=True
    )
    stderr_handler = logging.StreamHandler()
    for handler in (file_handler, stderr_handler):
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    logger.propagate = False  # waitress sets up the root logger too; say each line once
    logger._pacs_lite_configured = True
