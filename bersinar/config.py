"""Configuration: each component has a nameko-style ``config.yaml`` with ``${VAR:default}``
substitution, and every default works on one machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("mitra", "rujukan", "laporan", "notifikasi", "gateway")
SERVICES = ("mitra", "rujukan", "laporan", "notifikasi")


def var_dir() -> Path:
    """Where one machine keeps its state (secrets, logs, the embedded database, the
    supervisor's socket): ``BERSINAR_VAR``, by default ``var/`` of the checkout."""
    return Path(os.environ.get("BERSINAR_VAR") or ROOT / "var").absolute()


def secrets_file() -> Path:
    return var_dir() / "secrets.env"


def embedded_data_dir() -> Path:
    """The embedded PostgreSQL's data folder (bersinar/pg.py)."""
    return var_dir() / "pg"


def config_path(component: str) -> Path:
    if component == "gateway":
        return ROOT / "gateway" / "config.yaml"
    return ROOT / "services" / component / "config.yaml"


def load_secrets_file(path: Path | None = None) -> None:
    """Put the keys of ``var/secrets.env`` (made by ``bersinar secrets init``) into the
    environment, never overriding a variable that is already set. python-dotenv reads
    the file as compose reads an env file: quotes, ``export``, comments."""
    path = path or secrets_file()
    if path.exists():
        load_dotenv(path, override=False)


def load_config(component: str) -> dict[str, Any]:
    """A component's configuration. An empty ``DATABASE_URL`` names the component's
    database on the embedded PostgreSQL (``EMBEDDED_DATABASE`` is then true)."""
    from nameko.cli.main import setup_yaml_parser

    from bersinar import pg

    setup_yaml_parser()
    with open(config_path(component)) as handle:
        config = yaml.safe_load(handle)
    config["EMBEDDED_DATABASE"] = not config.get("DATABASE_URL")
    if config["EMBEDDED_DATABASE"]:
        config["DATABASE_URL"] = pg.url(embedded_data_dir(), pg.database_name(component))
    return config
