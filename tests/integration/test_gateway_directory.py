"""The gateway's copy of the partner directory (gateway/readmodel.py) on the real broker
and database, mitra and the gateway in this process: reads come from the copy; until it
is loaded, and for a partner it does not hold, they go to mitra by RPC; and whichever
answers, each role gets the same body and ETag (one rule, bersinar.directory)."""

from __future__ import annotations

import requests
from nameko.containers import ServiceContainer

from gateway.readmodel import Directory
from gateway.service import GatewayService
from services.mitra.handlers import seed_partners
from services.mitra.service import MitraService
from tests.integration.conftest import wait_until
from tests.support.fixtures import empty_everything

PARTNER = "yayasan-kipas"


def test_reads_come_from_the_copy_and_from_mitra_until_it_holds_the_partner(
    make_config, uow_factories, amqp_uri
):
    empty_everything(uow_factories, amqp_uri)
    with uow_factories["mitra"]() as uow:
        seed_partners(uow)
        uow.commit()
    mitra = ServiceContainer(MitraService, make_config("mitra"))
    mitra.start()
    # one whole load at start, then none (no relay runs here, so no event either): the
    # test alone decides what the copy holds
    gateway = ServiceContainer(
        GatewayService, make_config("gateway", DIRECTORY_CHECK_INTERVAL=3600)
    )
    gateway.start()
    try:
        copy = next(d for d in gateway.dependencies if isinstance(d, Directory)).directory
        wait_until(lambda: copy.loaded, message="the copy's first load")
        base = f"http://{gateway.config['WEB_SERVER_ADDRESS']}"
        admin = {"Authorization": f"Bearer {gateway.config['ADMIN_KEY']}"}

        def key(role, partner_id=None):
            body = {"role": role, "label": f"{role} test", "partner_id": partner_id}
            body = {k: v for k, v in body.items() if v is not None}
            answer = requests.post(f"{base}/api/v1/api-keys", json=body, headers=admin, timeout=10)
            assert answer.status_code == 201, answer.text
            return {"Authorization": f"Bearer {answer.json()['key']}"}

        callers = {
            "admin": admin,
            "officer": key("officer"),
            "national": key("national"),
            "own partner": key("partner", PARTNER),
            "other partner": key("partner", "yayasan-pesona"),
        }

        def read(path, headers):
            answer = requests.get(base + path, headers=headers, timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json(), answer.headers["ETag"]

        paths = (f"/api/v1/partners/{PARTNER}", "/api/v1/partners?limit=200")
        from_copy = {(w, p): read(p, h) for w, h in callers.items() for p in paths}
        held = dict(copy.entries[PARTNER])

        # not loaded: mitra answers, the same body and tag for every caller
        copy.loaded = False
        from_mitra = {(w, p): read(p, h) for w, h in callers.items() for p in paths}
        assert from_mitra == from_copy
        body, _ = from_mitra[("own partner", paths[0])]
        assert body["contacts"] == []
        assert "contacts" not in from_mitra[("other partner", paths[0])][0]

        # loaded: the copy answers (what it holds, not what mitra holds)
        copy.loaded = True
        copy.entries[PARTNER] = {**held, "address": "Alamat dalam salinan"}
        assert read(paths[0], admin)[0]["address"] == "Alamat dalam salinan"
        listed = read(paths[1], callers["other partner"])[0]["items"]
        assert [p["address"] for p in listed if p["id"] == PARTNER] == ["Alamat dalam salinan"]

        # a partner the copy does not hold is asked of mitra
        del copy.entries[PARTNER]
        assert read(paths[0], admin) == from_copy[("admin", paths[0])]
    finally:
        gateway.kill()
        mitra.kill()
