"""bersinar/logs.py: a component's process prints nothing but JSON lines, whatever
writes (logging, print, standard error, warnings, eventlet's hub, an uncaught
exception), each with an RFC 3339 time in UTC."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from bersinar.config import ROOT

SCRIPT = textwrap.dedent(
    """
    import warnings
    warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
    import eventlet
    eventlet.monkey_patch()
    import logging, sys, warnings
    from bersinar.context import correlated
    from bersinar.logs import setup_logging

    setup_logging("probe")
    with correlated("corr-12345678"):
        logging.getLogger("probe").info("access", extra={"status": 200, "duration_ms": 1.5})
    print("a library's print")
    sys.stderr.write("a library's complaint\\n")
    warnings.warn("a warning")

    def boom():
        raise ValueError("a greenthread that raises")

    eventlet.spawn(boom)
    eventlet.sleep(0.05)
    raise RuntimeError("the end")
    """
)


def test_every_line_a_process_prints_is_json():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0  # the uncaught exception still ends the process
    assert done.stderr == ""
    records = [json.loads(line) for line in done.stdout.splitlines()]
    for record in records:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["time"]), record
        assert record["service"] == "probe"
    by_name = {r["name"]: r for r in records}
    assert by_name["probe"]["correlation_id"] == "corr-12345678"
    assert (by_name["probe"]["status"], by_name["probe"]["duration_ms"]) == (200, 1.5)
    assert by_name["stdout"]["message"] == "a library's print"
    assert by_name["stderr"]["message"] == "a library's complaint"
    assert "a warning" in by_name["py.warnings"]["message"]
    assert "a greenthread that raises" in by_name["eventlet.hub"]["exc_info"]
    assert "the end" in by_name["bersinar.uncaught"]["exc_info"]


def test_supervisord_writes_its_own_log_file_as_json_and_the_terminal_as_text(tmp_path, capsys):
    from supervisor import loggers
    from supervisor.options import ServerOptions

    from cli import supervisord

    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={tmp_path / 'supervisord.log'}\n"
        f"pidfile={tmp_path / 'supervisord.pid'}\n"
    )
    options = ServerOptions()
    options.realize(["-c", str(conf)])
    # what supervisord says of its configuration while it makes its logger
    options.parse_warnings.append("a warning of the configuration")
    options.parse_criticals.append("a critical word on the configuration")
    options.parse_criticals.append(
        "Supervisor is running as root.  Privileges were not dropped because no user is "
        "specified in the config file."
    )
    supervisord.make_logger(options)
    try:
        options.logger.info("spawned: 'mitra' with pid 4242")
        options.logger.critical("a message\nof two lines")
    finally:  # the file only: the terminal's stream is pytest's
        for handler in options.logger.handlers:
            if isinstance(handler, loggers.FileHandler):
                handler.close()
    records = [json.loads(line) for line in (tmp_path / "supervisord.log").read_text().splitlines()]
    for record in records:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["time"]), record
        assert record["service"] == "supervisord"
    said = [(r["level"], r["message"]) for r in records]
    assert ("WARNING", "a warning of the configuration") in said
    assert ("CRITICAL", "a critical word on the configuration") in said
    # running as root (`make run` in a container) is said, but it is not a failure
    as_root = [level for level, message in said if message.startswith("Supervisor is running")]
    assert as_root == ["WARNING"]
    assert said[-2:] == [
        ("INFO", "spawned: 'mitra' with pid 4242"),
        ("CRITICAL", "a message\nof two lines"),
    ]
    terminal = capsys.readouterr().out
    assert "INFO spawned: 'mitra' with pid 4242" in terminal
    assert "WARN a warning of the configuration" in terminal


def test_each_line_of_the_embedded_postgresql_becomes_fields_and_a_level():
    import logging

    from bersinar.pg import server_line

    level, fields = server_line(
        '2026-12-05 01:23:51.313 UTC [18412] FATAL:  database "x" does not exist'
    )
    assert level == logging.ERROR
    assert fields == {"message": 'database "x" does not exist', "severity": "FATAL", "pid": 18412}
    # the lines that belong to a message keep its level
    level, fields = server_line("2026-12-05 01:23:51.314 UTC [18412] STATEMENT:  SELECT 1", level)
    assert (level, fields["severity"]) == (logging.ERROR, "STATEMENT")
    assert server_line("\tFROM referrals", level) == (logging.ERROR, {"message": "FROM referrals"})
    level, fields = server_line("2026-12-05 01:23:46.057 UTC [18261] LOG:  ready", level)
    assert (level, fields["message"]) == (logging.INFO, "ready")
    assert server_line("2026-12-05 01:23:46.057 UTC [7] PANIC:  x")[0] == logging.CRITICAL


def test_a_connection_refused_while_the_embedded_postgresql_starts_or_stops_is_no_error():
    import logging

    from bersinar.pg import server_line

    for message in (
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is not yet accepting connections",
        "the database system is in recovery mode",
        "terminating connection due to administrator command",
    ):
        level, fields = server_line(f"2026-12-06 01:10:00.001 UTC [311] FATAL:  {message}")
        assert (level, fields["severity"], fields["message"]) == (logging.INFO, "FATAL", message)
        # its DETAIL line follows it as information too
        assert server_line("2026-12-06 01:10:00.001 UTC [311] DETAIL:  x", level)[0] == logging.INFO
    # any other FATAL stays an error
    level, _ = server_line('2026-12-06 01:10:00.001 UTC [311] FATAL:  role "x" does not exist')
    assert level == logging.ERROR
