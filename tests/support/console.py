"""Signing in to the web console over plain HTTP, for tests that need a person's session
without a browser."""

from __future__ import annotations

import re

import requests


def signed_in_session(system, username: str, password: str) -> requests.Session:
    """A plain HTTP client signed in like a browser (for checks a browser cannot make,
    such as a form posted without its CSRF token)."""
    session = requests.Session()
    form = session.get(system.base_url + "/console/masuk", timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = session.post(
        system.base_url + "/console/masuk",
        data={"csrf": token, "username": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    return session
