"""JSON logs with the service name and the correlation id on every line."""

from __future__ import annotations

import logging
import os

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


def setup_logging(service: str, level: str | None = None) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(service, level or os.environ.get("LOG_LEVEL", "INFO")))
