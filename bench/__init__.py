"""The benchmark harness of Bersinar: ``python -m bench`` (``make bench``).

It starts a system of its own on a fresh RabbitMQ vhost and fresh PostgreSQL databases,
measures ``POST /api/v1/referrals`` at 1, 10 and 50 connections and events per second
through outbox → relay → consumers, records every process's memory and CPU, prints the
figures against the targets, writes ``docs/benchmarks.md`` and removes everything it made.
"""
