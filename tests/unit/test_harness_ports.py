"""The test systems' listening ports (harness/infra.py ``free_port``): never one the
kernel may hand to an outgoing connection meanwhile, and free when handed out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.infra import LISTEN_PORTS, free_port


def test_listening_ports_are_free_and_below_the_range_of_outgoing_connections():
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert LISTEN_PORTS.stop <= low
    ports = {free_port() for _ in range(20)}
    assert all(port in LISTEN_PORTS for port in ports)
    assert len(ports) == 20  # never the same port twice
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # raises if it was not free


def test_a_port_someone_listens_on_is_not_handed_out(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr("harness.infra.LISTEN_PORTS", range(busy, busy + 1))
        with pytest.raises(RuntimeError, match=str(busy)):
            free_port()
