"""JSON logs: one object per line, with an ISO-8601 UTC time, the component and the
correlation id on every line.

Whatever a process would otherwise print in plain text is turned into log records too:
tracebacks that eventlet's hub prints for a greenthread that died, uncaught exceptions
of the main thread and of other threads, warnings, and any line a library writes to
standard error. So every line of a component's log parses as JSON."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from bersinar.context import current_correlation_id


class ContextFilter(logging.Filter):
    def __init__(self, service: str = ""):
        super().__init__()
        self.service = service or os.environ.get("BERSINAR_COMPONENT", "")

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = current_correlation_id()
        record.service = self.service
        return True


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "fmt", "%(asctime)s %(levelname)s %(name)s %(service)s %(correlation_id)s %(message)s"
        )
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level"})
        super().__init__(*args, **kwargs)

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return utc_time(record.created)


def utc_time(moment: float) -> str:
    """A time (seconds since the epoch) as every log line carries it: RFC 3339 in UTC
    with milliseconds, ``2026-12-04T22:10:00.123Z``."""
    when = datetime.fromtimestamp(moment, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_file_logger(name: str, path: Path, service: str) -> logging.Logger:
    """A logger writing JSON lines to ``path`` only (the file of a command that also
    prints to a terminal: ``bersinar setup``'s ``setup.log``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter(service))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def logging_config(service: str, level: str = "INFO") -> dict:
    """A dictConfig for a component (nameko takes it under ``LOGGING``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "service": service}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["context"],
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "amqp": {"level": "WARNING"},
            "kombu": {"level": "WARNING"},
            # the gateway writes its own access line, with the correlation id
            "nameko.web.server": {"level": "WARNING"},
        },
    }


class LoggedStream(io.TextIOBase):
    """A text stream whose every line becomes a log record of ``logger`` (what a
    library prints to standard error): each line is JSON like the rest of the log."""

    def __init__(self, logger: logging.Logger, level: int):
        super().__init__()
        self._logger = logger
        self._level = level
        self._pending = ""
        self._busy = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if getattr(self._busy, "on", False):
            return len(text)  # the logging machinery's own complaint: never a loop
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        self._emit(lines)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit([line])

    def _emit(self, lines: list[str]) -> None:
        self._busy.on = True
        try:
            for line in lines:
                if line.strip():
                    self._logger.log(self._level, line.rstrip())
        finally:
            self._busy.on = False


def _log_uncaught(exc_type, exc_value, exc_traceback) -> None:
    logging.getLogger("bersinar.uncaught").critical(
        "uncaught %s", exc_type.__name__, exc_info=(exc_type, exc_value, exc_traceback)
    )


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("bersinar.uncaught").error(
        "uncaught exception in thread %s",
        getattr(args.thread, "name", "?"),
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _route_eventlet_hub() -> None:
    """eventlet's hub prints the traceback of a greenthread or timer that raised (an RPC
    ping that timed out, say) straight to standard error: log it instead, one record
    with the traceback as a field."""
    if "eventlet" not in sys.modules:
        return
    from eventlet.hubs import hub

    logger = logging.getLogger("eventlet.hub")

    def squelch_generic_exception(self, exc_info):
        if self.debug_exceptions:
            logger.error("greenthread ended with %s", exc_info[0].__name__, exc_info=exc_info)

    def squelch_timer_exception(self, timer, exc_info):
        if self.debug_exceptions:
            logger.error("timer ended with %s", exc_info[0].__name__, exc_info=exc_info)

    hub.BaseHub.squelch_generic_exception = squelch_generic_exception
    hub.BaseHub.squelch_timer_exception = squelch_timer_exception


def setup_logging(service: str, level: str | None = None) -> None:
    """JSON logs on standard output for a component's process, and nothing else printed
    in plain text: prints, standard error, warnings, uncaught exceptions and eventlet's
    hub all go through logging."""
    import logging.config

    logging.config.dictConfig(logging_config(service, level or os.environ.get("LOG_LEVEL", "INFO")))
    logging.captureWarnings(True)
    _route_eventlet_hub()
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_exception
    # the handler above keeps the real standard output it was given
    sys.stdout = LoggedStream(logging.getLogger("stdout"), logging.INFO)
    sys.stderr = LoggedStream(logging.getLogger("stderr"), logging.WARNING)
