"""The baseline: the same hops as Bersinar's read and create, in plain nameko and nothing
else. An `@http` gateway calls one RPC that reads one row, or one that inserts one row
and dispatches one event to one consumer that inserts one row. No contracts, outbox,
inbox, validation, audit or metrics: what nameko, RabbitMQ and PostgreSQL cost on their
own on this machine, measured in the same run as Bersinar (bench/run.py).

Run one service per process, as Bersinar does:
``python -m bench.baseline.app gateway|store|log`` with ``AMQP_URI``, ``DATABASE_URL``
and (gateway) ``PORT`` in the environment. Nothing of Bersinar imports this.
"""

from __future__ import annotations

import json
import os
import sys

TABLES = (
    "CREATE TABLE IF NOT EXISTS items (id bigserial PRIMARY KEY, name text NOT NULL, "
    "body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS item_log (id bigserial PRIMARY KEY, item_id bigint NOT NULL, "
    "logged_at timestamptz NOT NULL DEFAULT now())",
)
SEED = "INSERT INTO items (name, body) SELECT 'item ' || n, '{}' FROM generate_series(1, 5) n"


def _engine():
    from sqlalchemy import create_engine

    # one connection per nameko worker (10), as the bench gives Bersinar's processes
    return create_engine(os.environ["DATABASE_URL"], pool_size=10, max_overflow=0)


def services():
    from nameko.events import EventDispatcher, event_handler
    from nameko.rpc import RpcProxy, rpc
    from nameko.web.handlers import http
    from sqlalchemy import text
    from werkzeug.wrappers import Response

    engine = _engine()

    class Store:
        name = "baseline_store"
        dispatch = EventDispatcher()

        @rpc
        def read(self, item_id):
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT id, name, body FROM items WHERE id = :id"), {"id": item_id}
                ).one_or_none()
            return dict(row._mapping) if row else None

        @rpc
        def create(self, body):
            with engine.begin() as connection:
                item_id = connection.execute(
                    text(
                        "INSERT INTO items (name, body) VALUES (:name, CAST(:body AS jsonb)) "
                        "RETURNING id"
                    ),
                    {"name": str(body.get("name", "")), "body": json.dumps(body)},
                ).scalar()
            self.dispatch("item_created", {"id": item_id})
            return {"id": item_id}

    class Log:
        name = "baseline_log"

        @event_handler("baseline_store", "item_created")
        def on_created(self, payload):
            with engine.begin() as connection:
                connection.execute(
                    text("INSERT INTO item_log (item_id) VALUES (:id)"), {"id": payload["id"]}
                )

    class Gateway:
        name = "baseline_gateway"
        store = RpcProxy("baseline_store")

        @http("GET", "/items/<int:item_id>")
        def get(self, request, item_id):
            item = self.store.read(item_id)
            if item is None:
                return Response(b'{"code":"NOT_FOUND"}', 404, mimetype="application/json")
            return Response(json.dumps(item), 200, mimetype="application/json")

        @http("POST", "/items")
        def post(self, request):
            created = self.store.create(json.loads(request.get_data(as_text=True)))
            return Response(json.dumps(created), 201, mimetype="application/json")

    return {"gateway": Gateway, "store": Store, "log": Log}


def main(which: str) -> None:
    import eventlet

    eventlet.monkey_patch()
    from nameko.cli.run import run

    config = {
        "AMQP_URI": os.environ["AMQP_URI"],
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{os.environ.get('PORT', '0')}",
    }
    run([services()[which]], config)


if __name__ == "__main__":
    main(sys.argv[1])
