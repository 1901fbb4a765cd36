"""supervisord as `bersinar run` starts it: supervisord itself, with its own log file
(``var/log/supervisord.log``) written as JSON lines like every other log of the machine.

supervisord offers no choice of format for its log: its handlers write
``fmt % fields`` with a fixed text format. Here the file handler's format is an object
that turns those fields into one JSON object per line; what supervisord prints on the
terminal of `make run` stays text. Run as ``python -m cli.supervisord -c <conf>``."""

from __future__ import annotations

import json
import sys
import time
import warnings

# eventlet (under nameko, imported by bersinar.logs) warns on import that it is deprecated
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

from supervisor import loggers, supervisord  # noqa: E402
from supervisor.options import ServerOptions  # noqa: E402

from bersinar.logs import utc_time  # noqa: E402

# supervisord's level names, as the rest of the logs name them
LEVELS = {
    "CRIT": "CRITICAL",
    "ERRO": "ERROR",
    "WARN": "WARNING",
    "INFO": "INFO",
    "DEBG": "DEBUG",
    "TRAC": "DEBUG",
    "BLAT": "DEBUG",
}


# what supervisord says when it runs as root with no `user=` in its configuration
_AS_ROOT = "Supervisor is running as root"


class JsonLines:
    """A supervisord log format: ``format % fields`` is one JSON line."""

    def __mod__(self, fields: dict) -> str:
        record = {
            "time": utc_time(time.time()),
            "level": LEVELS.get(fields["levelname"], fields["levelname"]),
            "name": "supervisord",
            "service": "supervisord",
            "message": fields["message"].rstrip("\n"),
        }
        return json.dumps(record, ensure_ascii=False) + "\n"


_make_logger = ServerOptions.make_logger


def make_logger(options: ServerOptions) -> None:
    """supervisord's own ``make_logger``, then JSON for its log file; what it would log
    while making the logger (warnings about the configuration) is logged after."""
    held = options.parse_criticals, options.parse_warnings, options.parse_infos
    options.parse_criticals, options.parse_warnings, options.parse_infos = [], [], []
    _make_logger(options)
    for handler in options.logger.handlers:
        if isinstance(handler, loggers.FileHandler):  # the rotating one included
            handler.setFormat(JsonLines())
    criticals, warnings_, infos = held
    for message in criticals:
        # `make run` as root (a container, this machine) is a choice, not a failure
        if message.startswith(_AS_ROOT):
            options.logger.warn(message)
        else:
            options.logger.critical(message)
    for message in warnings_:
        options.logger.warn(message)
    for message in infos:
        options.logger.info(message)


def main() -> None:
    ServerOptions.make_logger = make_logger
    sys.exit(supervisord.main())


if __name__ == "__main__":
    main()
