"""The analysis under "Where the time goes" in docs/benchmarks.md. Written by hand from
the runs and py-spy profiles of 2026-11-28 (py-spy run outside the project, not a
dependency); re-read it when the figures or the services change."""

NOTES = """\
Read the figures with the machine in mind: **2 shared cores** run the nine processes,
PostgreSQL, RabbitMQ and the generator, and other people's test runs at the same time (the
"other" row of the CPU table and the load averages; the run adds a note when others took
more than a quarter of a core). Runs minutes apart differed by up to 4× (61, 55, 41, 25
and 14 req/s at 10 connections as other load came and went): the verdicts, not the last
digit, are the result. The quietest full run on the slice alone (others ≤ 8 % of a
core, 05:07 UTC, before notifikasi planned deliveries per channel) measured 39 / 55 / 53
req/s at 1 / 10 / 50 connections, p99 44 / 346 / 1,187 ms, and 155 events/s end to end;
the run above (06:35 UTC, others ≤ 6 % during the HTTP phases) is the current code.

**The load generator is not the bottleneck.** Against a canned local server the same
generator does 1,100–4,500 req/s at 10 and 50 connections (depending on the machine's
load); during the real phases it uses 1–3 % of one core while the system answers well
under 100 req/s.

**Referrals: the machine's CPU is spent.**
- The machine is at ~150 % of 200 % CPU with one connection and at 185–200 % from ten
  on. One referral costs about 30–40 ms of CPU summed over all processes on a quiet
  machine (up to 80 ms under other load; "CPU ms/referral"): rujukan 10–15 ms, then
  PostgreSQL, notifikasi, gateway, RabbitMQ, laporan and the four relays (which poll their
  outbox every 50 ms even when idle: ~2 % of a core each). 300 referrals/s on two cores
  would need ≤ 6.7 ms per referral in total, 5× less than now: no single setting gets
  there; it needs less work per referral or more cores.
- Until commit 840f54c rujukan's `_partner_view` took `SELECT … FOR UPDATE` on the
  partner's read-model row for the whole create transaction, so with five partners at
  most five creates progressed at once and throughput hardly grew past 10 connections.
  A request takes no place (only accept does), so creation no longer locks the row; the
  rest of the create transaction (~10 statements, each transaction after a pool
  pre-ping) remains. In closed loop latency ≈ connections ÷ throughput, so p99 at 10 and
  50 connections follows the CPU limit above.
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
for partner contacts. Up to commit c7bd487 ~15–28 % of notifikasi's samples were Jinja
compiling templates again on every render; they are compiled once since 840f54c. The pool
pre-ping is 4–6 % of samples in both consumers. 1,500 events/s end to end is far out of reach of
one-event-per-transaction consumers on this machine.

**Memory is not a concern**: every process stays around 70–95 MiB resident under load,
well under 200 MB.
"""
