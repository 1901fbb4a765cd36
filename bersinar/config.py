"""Configuration: each component has a nameko-style ``config.yaml`` with ``${VAR:default}``
substitution, and every default works on one machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("mitra", "rujukan", "laporan", "notifikasi", "gateway")
SERVICES = ("mitra", "rujukan", "laporan", "notifikasi")
SECRETS_FILE = ROOT / "var" / "secrets.env"


def config_path(component: str) -> Path:
    if component == "gateway":
        return ROOT / "gateway" / "config.yaml"
    return ROOT / "services" / component / "config.yaml"


def load_secrets_file(path: Path = SECRETS_FILE) -> None:
    """Put the keys of ``var/secrets.env`` (made by ``bersinar secrets init``) into the
    environment, never overriding a variable that is already set."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip())


def load_config(component: str) -> dict[str, Any]:
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(config_path(component)) as handle:
        return yaml.safe_load(handle)
