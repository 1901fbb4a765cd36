"""The production image (deploy/Dockerfile) and `make run` install the runtime lock
alone: no test or lint tool reaches production. Both locks pin every package with its
hashes and agree on every package they share."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bersinar.config import ROOT

RUNTIME = ROOT / "requirements.lock"
DEV = ROOT / "requirements-dev.lock"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
# the tools of the tests, of the linters and of the checks of deploy/: never in production
TEST_TOOLS = {
    "pytest", "pytest-timeout", "playwright", "schemathesis", "hypothesis", "ruff",
    "aiosmtpd", "kubernetes-validate", "check-jsonschema", "import-linter", "grimp",
    "pip-tools",
}  # fmt: skip


def locked(path) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, hashes) of a pip-tools lock."""
    text = path.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split("--hash=")
        name, version = requirement.strip().split("==")
        pins[canonicalize_name(name)] = (version, {o.strip() for o in options})
    return pins


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_locked_package_is_pinned_with_hashes():
    for path in (RUNTIME, DEV):
        pins = locked(path)
        assert pins, path
        for name, (version, hashes) in pins.items():
            assert re.fullmatch(r"[\w.+!-]+", version), (path.name, name)
            assert hashes and all(h.startswith("sha256:") for h in hashes), (path.name, name)


def test_the_runtime_lock_holds_no_test_tool_and_the_dev_lock_all_of_them():
    runtime, dev = locked(RUNTIME), locked(DEV)
    assert TEST_TOOLS & set(runtime) == set()
    dev_extra = {
        canonicalize_name(Requirement(r).name) for r in pyproject()["optional-dependencies"]["dev"]
    }
    assert dev_extra <= set(dev)
    # what pyproject.toml pins is what the locks hold (`make lock` after changing a pin)
    for requirement in map(Requirement, pyproject()["dependencies"]):
        assert requirement.specifier.contains(runtime[canonicalize_name(requirement.name)][0])
    for requirement in map(Requirement, pyproject()["optional-dependencies"]["dev"]):
        assert requirement.specifier.contains(dev[canonicalize_name(requirement.name)][0])
    # one version of a package whichever set installs it
    assert {n: dev[n][0] for n in runtime} == {n: v for n, (v, _) in runtime.items()}


def test_the_image_and_make_run_install_the_runtime_lock_alone():
    dockerfile = DOCKERFILE.read_text()
    installs = re.findall(r"^RUN pip install (.+)$", dockerfile, flags=re.M)
    assert "--require-hashes -r /tmp/build/requirements.lock" in installs
    instructions = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert not [line for line in instructions if "requirements-dev" in line]
    copied = re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M)
    assert "requirements-dev.lock" not in copied and "tests" not in copied
    # the project itself without dependencies: nothing beyond the lock
    assert [i for i in installs if "/tmp/build" in i and "-r " not in i] == [
        "--no-deps --no-build-isolation /tmp/build && rm -rf /tmp/build"
    ]
    makefile = MAKEFILE.read_text()
    rule = re.search(r"^\$\(STAMP\):.*?(?=^\S)", makefile, flags=re.M | re.S).group(0)
    assert "--require-hashes -r requirements.lock\n" in rule and "requirements-dev" not in rule
    assert re.search(r"^run: install$", makefile, flags=re.M)
    assert re.search(r"^test: install-dev ", makefile, flags=re.M)
