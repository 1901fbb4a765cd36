"""The analysis under "Where the time goes" in docs/benchmarks.md. Written by hand from
the runs and py-spy profiles of 2026-11-28 (py-spy run outside the project, not a
dependency); re-read it when the figures or the services change."""

NOTES = """\
Read the figures with the machine in mind: **2 shared cores** run the nine processes,
PostgreSQL, RabbitMQ and the generator, and other people's test runs at the same time (the
"other" row of the CPU table and the load averages; the run adds a note when others took
more than a quarter of a core). Runs minutes apart differed by up to 4× (61, 55, 41, 25
and 14 req/s at 10 connections as other load came and went): the verdicts, not the last
digit, are the result. The quietest full run (others ≤ 8 % of a core, 05:07 UTC, on
commit c7bd487) measured 39 / 55 / 53 req/s at 1 / 10 / 50 connections, p99 44 / 346 /
1,187 ms, and 155 events/s end to end (relay 1,254/s, laporan 217/s, notifikasi 155/s).

**The load generator is not the bottleneck.** Against a canned local server the same
generator does 1,100–4,500 req/s at 10 and 50 connections (depending on the machine's
load); during the real phases it uses 1–3 % of one core while the system answers well
under 100 req/s.

**Referrals: the machine's CPU is spent, and creates queue on the partner row.**
- The machine is at ~150 % of 200 % CPU with one connection and at 185–200 % from ten
  on. One referral costs about 30–40 ms of CPU summed over all processes on a quiet
  machine (up to 80 ms under other load; "CPU ms/referral"): rujukan 10–15 ms, then
  PostgreSQL, notifikasi, gateway, RabbitMQ, laporan and the four relays (which poll their
  outbox every 50 ms even when idle: ~2 % of a core each). 300 referrals/s on two cores
  would need ≤ 6.7 ms per referral in total, 5× less than now: no single setting gets
  there; it needs less work per referral or more cores.
- rujukan's `_partner_view` takes `SELECT … FOR UPDATE` on the partner's read-model row
  and holds it for the whole create transaction (~10 statements: partner, agreements,
  active count, client lookup, a SAVEPOINT for the client insert, previous referral,
  referral + history, outbox, episode count, commit, each transaction after a pool
  pre-ping). With five partners at most five creates progress at once; under load ~4
  rujukan DB sessions are "waiting for a lock" and ~4 "idle in transaction" (the
  holder's greenlet waits for the eventlet hub or for CPU). So throughput rises by at
  most half from 1 to 10 connections (not at all in some runs) and not at all to 50,
  while p50 grows with the connection count (closed loop: latency ≈ connections ÷
  throughput).
- In rujukan's py-spy profile (10 connections) ~70 % of samples are inside
  `handlers.create_referral`, mostly SQLAlchemy ORM execution and flush; nameko's RPC reply
  with publisher confirms is ~11 %, marshmallow validation ~2–3 %, Fernet ~1.5 %. The
  gateway mostly waits; its share is the RPC publish (with confirms) and marshmallow.

**Events: the relay is fast, the consumers are not.** The rujukan relay publishes
900–2,500 events/s (batches of 200 with confirms). laporan and notifikasi each handle one
event per transaction (pool pre-ping `SELECT 1`, inbox `INSERT … ON CONFLICT`, the effect,
`COMMIT`, then the ack): laporan 70–360 events/s here (~2 ms of its own CPU per event plus
PostgreSQL's). notifikasi is the slowest and sets the end-to-end figure: ~150 events/s on
commit c7bd487, and only 10–22 referral_requested/s with the delivery work in progress in
the working tree at 06:00 UTC, where each event plans deliveries per recipient and
channel, writes inbox notifications, emits a `notification_sent` per inbox delivery (which
come back to notifikasi as events), and a delivery worker in the same process sends the
e-mails (the bench runs a local SMTP sink that accepts them) after asking mitra over RPC
for partner contacts. In both versions ~15–28 % of notifikasi's samples are Jinja
compiling templates again on every render (`domain.render` → `SandboxedEnvironment
.from_string`); caching compiled templates is the cheapest win, and the pre-ping is 4–6 %
of samples in both consumers. 1,500 events/s end to end is far out of reach of
one-event-per-transaction consumers on this machine.

**Memory is not a concern**: every process stays around 70–95 MiB resident under load,
well under 200 MB.
"""
