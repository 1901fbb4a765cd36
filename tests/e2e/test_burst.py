"""A burst against the default `make run` set-up, on a system of its own (`bersinar run`
with the embedded PostgreSQL, partners' capacities raised through the API): 400
referrals at 20 connections as fast as they are answered (the fault suite's burst case
posts 2,000). After the last answer every service is ok on /health, every queue of the
vhost drains, every referral answered 201 is in its partner's inbox exactly once and
supervisord restarted nothing. The figures are printed."""

from __future__ import annotations

import subprocess

import pytest

from harness import infra
from harness.burst import Burst, queue_depths, raise_capacity
from harness.receivers import SmtpServer
from harness.system import System
from tests.support.fixtures import TEST_HMAC_KEY

pytestmark = pytest.mark.reliability

COUNT, CONNECTIONS = 400, 20


@pytest.fixture(scope="module")
def burst_system(test_run_id, encryption_keys, var_dirs):
    var = var_dirs("burst")
    with infra.own_vhost(f"bersinar-burst-{test_run_id}") as amqp_uri:
        system = System(amqp_uri, encryption_keys, TEST_HMAC_KEY, var)
        # the partners' e-mails are accepted, as by a mail server
        smtp = SmtpServer(var / "maildir", port=system.smtp_port).start()
        try:
            system.start_all()
            yield system
        finally:
            system.terminate_all()
            smtp.stop()


def vhost_queues(system: System):
    vhost = system.amqp_uri.rsplit("/", 1)[1]

    def listing() -> dict[str, int]:
        done = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages_ready",
             "messages_unacknowledged"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        return queue_depths(done.stdout)

    return listing


def test_a_burst_is_answered_delivered_once_and_drained_without_restarts(burst_system):
    raise_capacity(burst_system)

    result = Burst(
        burst_system, vhost_queues(burst_system), count=COUNT, connections=CONNECTIONS
    ).run()

    print(f"\n[burst] {result.figures()}")
    assert result.load["ok"] == COUNT, result.load
    assert result.load["unclean_5xx"] == 0, result.load["unclean_kinds"]
    assert result.health_s is not None, "a service not ok on /health 60 s after the burst"
    assert result.drain_s is not None, "queues, outboxes or inboxes never drained"
    assert (result.missing, result.duplicated) == (0, 0)
    assert result.restarted == []
    assert result.parked == {}
    assert result.samples > 0  # the backlog was sampled during the burst
    assert result.failures == []
