"""``bersinar``: the one command line for operators."""

from __future__ import annotations

import contextlib
import json
import os
import secrets as pysecrets
import signal
import sys
import time
import warnings
from pathlib import Path

import click

# eventlet (under nameko) warns on import that it is deprecated; operators need not see it
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from bersinar import codes  # noqa: E402
from bersinar.config import (  # noqa: E402 - after the warning filters
    COMPONENTS,
    ROOT,
    SERVICES,
    embedded_data_dir,
    load_config,
    load_secrets_file,
    secrets_file,
    var_dir,
)

SUPERVISOR_CONF = ROOT / "deploy" / "supervisord.conf"


def _load(component: str) -> dict:
    load_secrets_file()
    return load_config(component)


def service_class(component: str):
    """The nameko service class of a component (the registry of what `serve` runs)."""
    import importlib

    if component == "gateway":
        return importlib.import_module("gateway.service").GatewayService
    module = importlib.import_module(f"services.{component}.service")
    return getattr(module, f"{component.capitalize()}Service")


def wait_for_broker(uri: str, timeout: float = 120.0) -> None:
    """nameko does not retry the broker at boot: wait for it here instead."""
    from bersinar.relay import amqp_connection

    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            connection = amqp_connection(uri)
            connection.connect()
            connection.close()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise click.ClickException(f"broker not reachable at startup: {exc}") from exc
            click.echo(f"waiting for the broker ({type(exc).__name__}) ...", err=True)
            time.sleep(delay)
            delay = min(delay * 2, 5)


@click.group()
def main():
    """Bersinar: jaringan lembaga rehabilitasi mitra BNN Provinsi Bengkulu."""


def wait_for_database(component: str, config: dict) -> None:
    """The component's database answers at the newest schema: a process started before
    its database (or before `bersinar setup` migrated it) waits instead of failing."""
    from bersinar.migrations import wait_for_schema

    def progress(reason: str) -> None:
        click.echo(f"waiting for the database of {component}: {reason}", err=True)

    wait_for_schema(component, config["DATABASE_URL"], progress)


@main.command()
@click.argument("components", nargs=-1)
def migrate(components):
    """Bring every component's database (or those named) to the newest schema."""
    from bersinar.migrations import upgrade

    for component in components or COMPONENTS:
        config = _load(component)
        upgrade(component, config["DATABASE_URL"])
        click.echo(f"{component}: migrated")


@main.command()
def seed():
    """Register the five partners of 2023 with their PKS (a second run changes nothing)."""
    from bersinar.clock import clock_from_config
    from bersinar.db import UnitOfWorkFactory
    from services.mitra import handlers
    from services.mitra.models import Base

    config = _load("mitra")
    factory = UnitOfWorkFactory(config["DATABASE_URL"], "mitra", Base.metadata)
    with factory() as uow:
        created = handlers.seed_partners(uow, clock_from_config(config).today())
        uow.commit()
    factory.dispose()
    click.echo(f"mitra: {created} partner(s) seeded")


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def relay(service):
    """Publish the SERVICE's outbox to the broker (run one per service; more wait)."""
    from bersinar.logs import setup_logging
    from bersinar.metrics import serve_metrics
    from bersinar.relay import OutboxRelay

    os.environ.setdefault("BERSINAR_COMPONENT", f"{service}-relay")
    setup_logging(f"{service}-relay")
    config = _load(service)
    wait_for_database(service, config)
    serve_metrics(
        int(config.get("RELAY_METRICS_PORT") or 0),
        str(config.get("METRICS_ADDRESS") or "127.0.0.1"),
    )
    worker = OutboxRelay(
        service,
        config["DATABASE_URL"],
        config["AMQP_URI"],
        batch_size=int(config.get("RELAY_BATCH_SIZE", 200)),
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()


@main.command()
@click.argument("component", type=click.Choice(COMPONENTS))
def serve(component):
    """Run one component's nameko service in the foreground."""
    import eventlet

    eventlet.monkey_patch()
    from nameko.cli.run import run

    from bersinar.logs import setup_logging

    os.environ.setdefault("BERSINAR_COMPONENT", component)
    setup_logging(component)
    config = _load(component)
    wait_for_database(component, config)
    wait_for_broker(config["AMQP_URI"])
    run([service_class(component)], config)


@main.group()
def db():
    """The embedded PostgreSQL of one machine (data under var/pg, a Unix socket)."""


@db.command("serve")
def db_serve():
    """Run the embedded PostgreSQL in the foreground, as supervisord's first program;
    the first start makes the cluster. SIGINT stops it (fast shutdown). Each line the
    server logs is printed as a JSON log line."""
    import logging

    from bersinar import pg
    from bersinar.logs import setup_logging

    os.environ.setdefault("BERSINAR_COMPONENT", "postgres")
    setup_logging("postgres")
    logger = logging.getLogger("postgres")

    def log(level: int, fields: dict) -> None:
        logger.log(level, fields.pop("message"), extra=fields)

    try:
        status = pg.run_server(embedded_data_dir(), log)
    except pg.EmbeddedPostgresError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(status)


@main.command()
@click.option(
    "--health-timeout",
    default=180.0,
    show_default=True,
    help="Seconds to wait for /health; 0: do not wait (containers: the migrate job, whose "
    "services start once it is done).",
)
@click.pass_context
def setup(ctx, health_timeout):
    """The start-up steps of one machine, each safe to run again: wait for PostgreSQL,
    create the databases that are missing, migrate, declare the queues, seed the
    partners, make the console's first admin; then wait until /health answers ok.
    supervisord runs it beside the services (which wait for their migrated database);
    if a step fails it says why and stops supervisord, so `make run` ends."""
    log = _setup_log()
    try:
        _setup_steps(ctx)
    except Exception as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else repr(exc)
        log.error(f"setup: FAILED: {message}")
        if os.environ.get("SUPERVISOR_ENABLED"):
            _stop_supervisor()
        sys.exit(1)
    if health_timeout > 0:
        _wait_healthy(health_timeout)


def _setup_log():
    """What the steps print goes to the terminal as text and to var/log/setup.log as JSON
    lines (standard error's lines as warnings); the logger of both."""
    import logging

    from bersinar.logs import LoggedStream, json_file_logger

    log = json_file_logger("bersinar.setup", var_dir() / "log" / "setup.log", "setup")
    terminal = logging.StreamHandler(sys.stdout)
    terminal.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(terminal)
    sys.stdout = LoggedStream(log, logging.INFO)
    sys.stderr = LoggedStream(log, logging.WARNING)
    return log


def _setup_steps(ctx) -> None:
    from bersinar import pg
    from bersinar.db import ensure_database

    configs = {component: _load(component) for component in COMPONENTS}
    started = time.monotonic()
    if any(config["EMBEDDED_DATABASE"] for config in configs.values()):
        click.echo(f"setup: waiting for the embedded PostgreSQL in {embedded_data_dir()}")
        pg.wait_ready(
            pg.admin_dsn(embedded_data_dir()),
            timeout=120,
            progress=lambda reason: click.echo(f"setup: still waiting ({reason})"),
        )
    for component, config in configs.items():
        if ensure_database(config["DATABASE_URL"]):
            click.echo(f"setup: {component}: database created")
    ctx.invoke(migrate)
    wait_for_broker(configs["mitra"]["AMQP_URI"])
    ctx.invoke(queues)
    ctx.invoke(seed)
    ctx.invoke(users_bootstrap)
    click.echo(f"setup: done in {time.monotonic() - started:.1f}s")


def _stop_supervisor() -> None:
    from supervisor import childutils

    try:
        childutils.getRPCInterface(os.environ).supervisor.shutdown()
        click.echo("setup: supervisord stopped")
    except Exception as exc:  # it may be stopping already
        click.echo(f"setup: could not stop supervisord: {exc!r}")


def _wait_healthy(timeout: float) -> None:
    import requests

    address = str(_load("gateway").get("WEB_SERVER_ADDRESS") or "127.0.0.1:8000")
    base = f"http://{address.replace('0.0.0.0', '127.0.0.1')}"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = requests.get(f"{base}/health", timeout=3)
            if answer.status_code == 200:
                click.echo(f"setup: Bersinar is ready at {base} (console: {base}/console)")
                return
            last = answer.text.strip()
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(1)
    click.echo(
        f"setup: {base}/health not ok after {timeout:.0f}s: {last} (see {var_dir() / 'log'})"
    )


def supervisor_config(var) -> Path:
    """deploy/supervisord.conf keeps its state in var/ of the checkout; for another
    folder (BERSINAR_VAR), a copy written there with only those paths changed."""
    if Path(var).resolve() == (ROOT / "var").resolve():
        return SUPERVISOR_CONF
    text = SUPERVISOR_CONF.read_text()
    text = text.replace("%(here)s/../var", str(var)).replace("%(here)s/..", str(ROOT))
    target = Path(var) / "supervisord.conf"
    target.write_text(text)
    return target


@main.command("run")
@click.pass_context
def run_all(ctx):
    """Everything of one machine under supervisord, in the foreground (what `make run`
    runs): the embedded PostgreSQL unless every <SERVICE>_DATABASE_URL names a server,
    the start-up steps (`bersinar setup`), the services, their relays and the gateway.
    Ctrl-C stops them all, the database last."""
    var = var_dir()
    (var / "log").mkdir(parents=True, exist_ok=True)
    ctx.invoke(secrets_init)
    embedded = [c for c in COMPONENTS if _load(c)["EMBEDDED_DATABASE"]]
    if embedded:
        click.echo(f"databases of {', '.join(embedded)}: embedded PostgreSQL in {var / 'pg'}")
    else:
        click.echo("databases: every <SERVICE>_DATABASE_URL is set; no embedded PostgreSQL")
    conf = supervisor_config(var)
    env = dict(
        os.environ,
        BERSINAR_VAR=str(var),
        BERSINAR_EMBEDDED_PG="true" if embedded else "false",
    )
    click.echo(f"logs in {var / 'log'}; supervisorctl -c {conf} status")
    sys.stdout.flush()
    # supervisord with its own log file in JSON (cli/supervisord.py)
    command = [sys.executable, "-m", "cli.supervisord", "-c", str(conf)]
    os.execve(sys.executable, command, env)


@main.group()
def secrets():
    """Keys for one machine: the admin API key and the client-data keys."""


@secrets.command("init")
def secrets_init():
    """Write var/secrets.env with fresh keys unless it exists (it is never overwritten)."""
    from cryptography.fernet import Fernet

    target = secrets_file()
    if target.exists():
        click.echo(f"{target} exists; kept")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Made by `bersinar secrets init`. Keep private; losing the rujukan keys loses",
        "# the identity of every client stored with them.",
        f"BERSINAR_ADMIN_KEY=bsk_{pysecrets.token_urlsafe(32)}",
        f"RUJUKAN_ENCRYPTION_KEYS=k1:{Fernet.generate_key().decode()}",
        f"RUJUKAN_NIK_HMAC_KEY=h1:{pysecrets.token_urlsafe(48)}",
    ]
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    click.echo(f"{target} written")


@main.group()
def parked():
    """Events parked after their last attempt: list and replay."""


def _handler_queues(service_filter: str | None):
    from bersinar.entrypoints import event_handlers_of

    for service in SERVICES:
        if service_filter and service != service_filter:
            continue
        for _, queue in event_handlers_of(service_class(service), service):
            yield service, queue


@main.command()
def queues():
    """Declare every consumer's event queue (bound to its exchange), retry and parking
    queues before anything publishes, so no service misses another's first events."""
    from bersinar.parking import declare_consumer_queues

    declared = 0
    for service in SERVICES:
        config = _load(service)
        declared += declare_consumer_queues(
            config["AMQP_URI"], service_class(service), service, config.get("EVENT_RETRY_DELAYS")
        )
    click.echo(f"{declared} consumer queue(s) declared")


@parked.command("list")
@click.option("--service", type=click.Choice(SERVICES))
@click.option("--show", is_flag=True, help="Print each parked message's headers.")
def parked_list(service, show):
    """How many events each consumer has parked, and why. Listing changes nothing: the
    messages keep their order and headers, and no delivery is counted against them."""
    from bersinar.parking import ParkingBusy, peek

    total = 0
    for svc, queue in _handler_queues(service):
        config = _load(svc)
        try:
            messages = peek(config["AMQP_URI"], queue, limit=100 if show else 0)
        except ParkingBusy as exc:
            raise click.ClickException(f"{exc}; try again when it is done") from exc
        count = messages.count
        total += count
        if count or show:
            click.echo(f"{queue}.parked: {count}")
        for item in messages.items:
            click.echo("  " + json.dumps(item, ensure_ascii=False, default=str))
    click.echo(f"total parked: {total}")
    sys.exit(0)


@parked.command("replay")
@click.argument("queue")
@click.option("--event-id", help="Replay only this event.")
@click.option("--limit", default=1000, show_default=True)
def parked_replay(queue, event_id, limit):
    """Send parked events of a handler QUEUE (without .parked) back to that handler only."""
    import amqp

    from bersinar.parking import ParkingBusy, replay

    service = queue.split("--", 1)[1].split(".", 1)[0] if "--" in queue else SERVICES[0]
    config = _load(service)
    try:
        replayed = replay(config["AMQP_URI"], queue, event_id=event_id, limit=limit)
    except amqp.exceptions.NotFound as exc:
        raise click.ClickException(f"no queue {queue} or {queue}.parked") from exc
    except ParkingBusy as exc:
        raise click.ClickException(f"{exc}; try again when it is done") from exc
    click.echo(f"replayed {replayed} message(s) to {queue}")


@main.group()
def crypto():
    """Client identity at rest (rujukan): encryption and NIK keys."""


@crypto.command("rotate")
@click.option("--batch-size", default=500, show_default=True, help="Clients per transaction.")
def crypto_rotate(batch_size):
    """Rewrite every client's identity with the first key of RUJUKAN_ENCRYPTION_KEYS and
    its NIK digest and name index with the first key of RUJUKAN_NIK_HMAC_KEY.

    Also indexes the names of clients stored before the name index existed (run it once
    after upgrading to it; with unchanged keys it only does that).

    Put the new key first and keep the old ones after it (``k2:new,k1:old``,
    ``h2:new,h1:old``), restart every rujukan instance, run this, then remove the old
    keys. Safe while the services run: each batch is one transaction, returning clients
    are found under either NIK key meanwhile, and a run that stops can be started again.
    Nothing is changed while a key that stored clients were written with is missing."""
    from sqlalchemy.exc import IntegrityError
    from tqdm import tqdm

    from bersinar.db import UnitOfWorkFactory
    from services.rujukan import handlers
    from services.rujukan.crypto import ClientCipher, KeyError_
    from services.rujukan.models import Base

    config = _load("rujukan")
    try:
        cipher = ClientCipher(
            str(config.get("ENCRYPTION_KEYS") or ""), str(config.get("NIK_HMAC_KEY") or "")
        )
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from exc
    keys = f"{cipher.current_kid}/{cipher.current_hmac_kid}"
    factory = UnitOfWorkFactory(config["DATABASE_URL"], "rujukan", Base.metadata)

    def batch(after: str):
        # a digest taken between the batch's check and its commit (only by a service that
        # lacks the old NIK key) fails the commit: the batch again then reports it
        for attempt in range(3):
            try:
                with factory() as uow:
                    result = handlers.rekey_clients(uow, cipher, after, batch_size)
                    uow.commit()
                return result
            except IntegrityError as exc:
                if attempt == 2:
                    # the database's detail would print a digest: say only what happened
                    raise click.ClickException(
                        "a batch kept meeting NIK digests written meanwhile; run again"
                    ) from exc
        raise AssertionError("unreachable")

    try:
        with factory() as uow:
            missing = handlers.missing_keys(uow, cipher)
            total = handlers.clients_to_rekey(uow, cipher)
        if missing:
            named = "; ".join(f"{var}: {', '.join(kids)}" for var, kids in missing.items())
            raise click.ClickException(
                f"clients were written with keys that are not configured ({named}); "
                "list them after the new keys and run again. Nothing was changed."
            )
        done, duplicates = 0, set()
        with tqdm(total=total, unit="klien", desc=f"ke kunci {keys}") as bar:
            for passes in range(1, 4):
                after, rewritten = "", 0
                while True:
                    count, last, twins = batch(after)
                    if last is None:
                        break
                    after, rewritten = last, rewritten + count
                    bar.update(count + len(set(twins) - duplicates))
                    duplicates.update(twins)
                done += rewritten
                with factory() as uow:
                    left = handlers.clients_to_rekey(uow, cipher) - len(duplicates)
                if left <= 0 or not rewritten or passes == 3:
                    break
                # written behind the run with an old key first: an instance not restarted
                click.echo(
                    f"{left} client(s) were written with an old key during the run: a rujukan "
                    "instance still has the old keys first; restart it. Going round again.",
                    err=True,
                )
                bar.total += left
    except KeyError_ as exc:
        raise click.ClickException(f"{exc}; add that key after the new one and run again") from exc
    finally:
        factory.dispose()
    click.echo(f"rujukan: {done} client(s) re-keyed with keys {keys}")
    if left > 0:
        raise click.ClickException(
            f"{left} client(s) are still written with an old key; run this again once "
            "every rujukan instance has the new keys first"
        )
    if duplicates:
        raise click.ClickException(
            f"{len(duplicates)} client record(s) have the NIK of another client and keep "
            f"their old NIK digest: {', '.join(sorted(duplicates))}. Keep the old NIK key "
            "until they are merged."
        )


@main.group()
def users():
    """People's accounts of the web console (/console); machines keep API keys."""


@contextlib.contextmanager
def _accounts():
    """A unit of work on the gateway's database, committed when the block ends; a
    refused change (a bad name, a short password) is told plainly, without a trace."""
    from bersinar.db import UnitOfWorkFactory
    from bersinar.errors import DomainError
    from gateway.models import Base

    config = _load("gateway")
    factory = UnitOfWorkFactory(config["DATABASE_URL"], "gateway", Base.metadata)
    try:
        with factory() as uow:
            yield uow
            uow.commit()
    except DomainError as exc:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(f"{exc.detail} {details}".strip()) from exc
    finally:
        factory.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Kata sandi", hide_input=True, confirmation_prompt="Ulangi kata sandi")


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(codes.PEOPLE), required=True)
@click.option("--partner", "partner_id", help="The partner an operator (role partner) acts for.")
@click.option("--name", "full_name", help="Full name shown on the console (default: USERNAME).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username, role, partner_id, full_name, password_stdin):
    """Create a console account (the password is asked for, never an argument)."""
    from gateway.console import accounts

    data = {
        "username": username,
        "full_name": full_name or username,
        "role": role,
        "partner_id": partner_id,
        "password": _read_password(password_stdin),
    }
    with _accounts() as uow:
        accounts.create_user(uow, data, "cli")
    click.echo(f"console user {username} ({role}) created")


@users.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_reset_password(username, password_stdin):
    """Set a new password: unlocks the account and ends its sessions."""
    from gateway.console import accounts

    password = _read_password(password_stdin)
    with _accounts() as uow:
        accounts.set_password(uow, accounts.find_user_id(uow, username), password)
    click.echo(f"password of {username} set")


@users.command("list")
def users_list():
    """Every console account: name, role, partner, locked or not."""
    from gateway.console import accounts

    with _accounts() as uow:
        for user in accounts.list_users(uow):
            locked = " locked" if user["locked"] else ""
            partner = f" {user['partner_id']}" if user["partner_id"] else ""
            click.echo(f"{user['username']}\t{user['role']}{partner}{locked}")


@users.command("bootstrap")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Where the first admin's password is written [default: var/console-admin.txt].",
)
def users_bootstrap(output):
    """On a fresh install (no console account yet): create the admin account ``admin``
    with a random password, written to var/console-admin.txt (mode 0600), or with the
    password in BERSINAR_CONSOLE_ADMIN_PASSWORD when it is set (Kubernetes: from the
    Secret; no file is written). Otherwise nothing. Run by `bersinar setup` (`make run`,
    the containers' migrate job); an existing file is never overwritten."""
    from pathlib import Path

    from gateway.console import accounts

    target = Path(output) if output else var_dir() / "console-admin.txt"
    given = os.environ.get("BERSINAR_CONSOLE_ADMIN_PASSWORD") or None
    with _accounts() as uow:
        if accounts.count_users(uow):
            click.echo("console: accounts exist; none created")
            return
        if given is None and target.exists():
            raise click.ClickException(f"{target} exists: move it away and run again")
        password = given or pysecrets.token_urlsafe(15)
        data = {
            "username": "admin",
            "full_name": "Admin Bersinar",
            "role": "admin",
            "password": password,
        }
        accounts.create_user(uow, data, "bootstrap")
        if given is not None:
            click.echo("console: admin account created with BERSINAR_CONSOLE_ADMIN_PASSWORD")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username=admin\npassword={password}\n")
    click.echo(f"console: admin account created; its password is in {target}")


if __name__ == "__main__":
    main()
