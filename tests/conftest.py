import os

# The browser tests (tests/browser) drive Chromium with Playwright, whose sync API hangs
# under eventlet's monkey-patching and needs no broker client of its own: they run in a
# pytest process of their own with BERSINAR_TEST_BROWSER=1 (`make browser`), and are left
# out of every other run.
BROWSER_RUN = os.environ.get("BERSINAR_TEST_BROWSER") == "1"
collect_ignore = [] if BROWSER_RUN else ["browser"]

if not BROWSER_RUN:
    # nameko's pytest plugin no longer monkey-patches: do it before anything imports
    # sockets.
    import eventlet

    eventlet.monkey_patch()

import shutil  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from harness import infra  # noqa: E402

pytest_plugins = ["tests.support.fixtures"]


def pytest_configure(config):
    if BROWSER_RUN:  # no monkey-patch on purpose: nameko's plugin need not say so
        config.option.suppress_eventlet_notification = True
    os.environ.setdefault("BERSINAR_TEST_RUN", uuid.uuid4().hex[:8])


def pytest_sessionfinish(session):
    infra.stop_server()  # the embedded PostgreSQL of a machine without its own, if started


@pytest.fixture(scope="session")
def test_run_id():
    return os.environ["BERSINAR_TEST_RUN"]


@pytest.fixture(scope="session")
def amqp_uri(test_run_id):
    """A RabbitMQ virtual host of this test run's own, so tests never touch `make run`."""
    vhost = f"bersinar-test-{test_run_id}"
    infra.create_vhost(vhost)
    yield infra.amqp_uri_for(vhost)
    infra.delete_vhost(vhost)


@pytest.fixture(scope="session")
def database_urls(test_run_id):
    """One PostgreSQL database per component for this run, migrated to head, on the
    machine's server or the run's embedded one (harness/infra.py)."""
    urls = infra.create_databases(f"bt_{test_run_id}")
    yield urls
    infra.drop_databases(urls)


@pytest.fixture(scope="session")
def var_dirs(test_run_id):
    """Folders for whole systems (`BERSINAR_VAR`): ``var_dirs("e2e")``. Outside pytest's
    own temporary tree, whose parent folder pytest makes private (0700) whenever a test
    session starts: started by root, the embedded PostgreSQL runs as another account and
    must keep reaching its data folder."""
    base = Path(tempfile.mkdtemp(prefix=f"bersinar-tests-{test_run_id}-"))
    base.chmod(0o755)
    made = 0

    def make(name: str) -> Path:
        nonlocal made
        made += 1
        folder = base / f"{name}-{made}"
        folder.mkdir()
        return folder

    make.base = base  # every folder made: tests/e2e/test_privacy_logs.py reads their logs
    yield make
    shutil.rmtree(base, ignore_errors=True)
