"""The analysis under "Where the time goes" in docs/benchmarks.md. Written by hand from
the runs, py-spy profiles and EXPLAIN ANALYZE of 2026-11-28 (py-spy run from a venv
outside the project, not a dependency); re-read it when the figures or the services
change."""

NOTES = """\
Read the figures with the machine in mind: **2 shared cores** run the nine processes,
PostgreSQL, RabbitMQ and the generator, and other people's test runs at the same time (the
"other" row of the CPU table and the load averages; the run adds a note when others took
more than a quarter of a core). Runs minutes apart differed by up to 4× (61, 55, 41, 25
and 14 req/s at 10 connections as other load came and went): the verdicts, not the last
digit, are the result. The quietest full run on the slice alone (others ≤ 8 % of a
core, 05:07 UTC, before notifikasi planned deliveries per channel) measured 39 / 55 / 53
req/s at 1 / 10 / 50 connections, p99 44 / 346 / 1,187 ms, and 155 events/s end to end;
the run above (08:50 UTC) had other people's work taking about a core throughout (load
average 9–16), so its create, read and events figures are 2–3× below quieter runs'.

**Against the plain-nameko baseline (issue 21).** Two runs with the baseline beside the
system, 2026-12-04, on a machine other sessions kept at a load average of 4–15 (first)
and 16–27 (second; others took 1–1.5 cores throughout, so every absolute figure is low).
The ratios are Bersinar / baseline, each pair measured seconds apart at the same
connection count:

| phase | run 1 (23:12 UTC, 3 s rows) | run 2 (23:24 UTC, 10 s and 6 s rows) |
|---|---:|---:|
| create at 1 connection, req/s | 32 / 80 = 0.40× (p99 3.4×) | 4 / 58 = 0.07× (p99 11.2×) |
| create at 10 connections, req/s | 15 / 159 = 0.10× (p99 7.8×) | 4 / 63 = 0.07× (p99 11.0×) |
| read a partner at 1 connection | 50 / 159 = 0.32× (p99 1.5×) | 12 / 61 = 0.19× (p99 4.0×) |
| read a partner at 10 connections | 36 / 249 = 0.15× (p99 6.9×) | 10 / 93 = 0.11× (p99 4.1×) |
| read a referral at 10 connections | 71 / 272 = 0.26× | 5 / 54 = 0.09× |
| list referrals at 10 connections | 30 / 191 = 0.16× | 5 / 95 = 0.05× |
| accept at 10 connections (vs the baseline's create) | 4 / 126 = 0.03× | 4 / 55 = 0.07× |
| submit a report at 10 connections (vs create) | 8 / 40 = 0.21× | 6 / 92 = 0.07× |
| events end to end (vs the baseline's consumer) | - | 59 / 338 = 0.17× |

Every target of issue 21 is missed by a wide margin (create 0.07–0.10× against ≥ 1.0×,
reading a partner 0.11–0.15× against ≥ 2×). The baseline costs 4.6–6.8 ms of CPU per read
and 11 ms per create (its three processes, PostgreSQL's backends and RabbitMQ), where a
referral costs Bersinar 28–44 ms summed over all processes (up to 140 ms on the busiest
machine). Both sides cross the same RPC and broker; what Bersinar adds per request is its
own work (authentication against the gateway's database, validation in the gateway and
again in the service, the ORM, the outbox row and its relay, the audit row of a read, and
for a referral notifikasi's deliveries and their outcome events). The baseline's
processes stay at 69–73 MiB resident, Bersinar's at 84–152 MiB. Reaching ≥ 2× on reads
needs reads that do not cross RPC at all (a read model in the gateway, kept current by
mitra's and rujukan's events); reaching 1.0× on create needs the cuts listed in the issue
(no deliveries for channels without an address, no outcome events consumed one by one,
one validation).

**Partner reads are conditional.** `GET /api/v1/partners`, `/{id}` and `/match` answer
with an `ETag` and 304 (no body) to a matching `If-None-Match`; the tag is a digest of the
caller's own answer, so a client polling the directory saves the transfer.

**Partner reads from the gateway's read model.** Since the gateway answers
`GET /api/v1/partners` and `/{id}` from its own copy of the directory, kept current by
mitra's events (docs/architecture.md, "The partner directory's read model"), a read
crosses no RPC. Three short runs on this shared machine
(2026-12-05, `--operations read_partner`, 10 s or 15 s counted per row, the admin's key;
others' work took 1.2–1.4 cores throughout each), each pair measured seconds apart:

| run | at 1 connection (p99 ms) | at 10 connections (p99 ms) |
|---|---:|---:|
| 01:38 UTC | 480 / 118 = 4.1× (p99 52 / 30 = 1.75×) | 926 / 156 = 5.9× (p99 55 / 135 = 0.41×) |
| 01:57 UTC | 621 / 159 = 3.9× (p99 38 / 37 = 1.03×) | 805 / 269 = 3.0× (p99 587 / 62 = 9.5×) |
| 02:01 UTC | - | 408 / 169 = 2.4× (p99 90 / 114 = 0.79×) |

The rate is ≥ 2× the baseline's read in every row; the p99 is within 2× in all rows but
one, where the gateway's tail reached 0.6 s while the machine was at 200 % of its two
cores (the gateway itself at half a core). The baseline's own figures were 2–4× below
its quieter runs' (544 req/s), so the ratio, not the absolute rate, is the result; a full
run on a quiet machine is still to be made.

**The load generator is not the bottleneck.** Against a canned local server the same
generator does 1,100–4,500 req/s at 10 and 50 connections (depending on the machine's
load); during the real phases it uses 1–3 % of one core while the system answers well
under 100 req/s.

**Referrals: the machine's CPU is spent.**
- The machine is at ~150 % of 200 % CPU with one connection and at 185–200 % from ten
  on. One referral costs about 30–40 ms of CPU summed over all processes on a quiet
  machine (up to 80 ms under other load; "CPU ms/referral"): rujukan 10–15 ms, then
  PostgreSQL, notifikasi, gateway, RabbitMQ, laporan and the four relays (until commit
  6e39054 they polled their outbox every 50 ms even when idle, ~2 % of a core each; an
  idle relay now sleeps until a commit NOTIFYs it). 300 referrals/s on two cores
  would need ≤ 6.7 ms per referral in total, 5× less than now: no single setting gets
  there; it needs less work per referral or more cores.
- Until commit 840f54c rujukan's `_partner_view` took `SELECT … FOR UPDATE` on the
  partner's read-model row for the whole create transaction, so with five partners at
  most five creates progressed at once and throughput hardly grew past 10 connections.
  A request takes no place (only accept does), so creation no longer locks the row.
  Since commit deefa03 a new client is inserted without a savepoint and is not searched
  for earlier episodes (three statements fewer); the fault suite's fixes added one read
  (whether the request's key already made the referral: a retried or redelivered
  request returns it instead of a second one). Since commit 547ae30 the create
  transaction is 7 statements and the commit: the partner and its agreements are one
  query, the client is inserted first (`ON CONFLICT DO NOTHING`; looked up only if the
  NIK is known), a busy process no longer tests its pooled connection before every
  transaction (only one that lay idle longer than `DB_PING_IDLE`), and the `ON CONFLICT`
  inserts are cached statements (SQLAlchemy 2.0 compiles its PostgreSQL
  `on_conflict_do_nothing()` again on every execution: ~2.5 ms of rujukan's CPU per
  referral here). In closed loop latency ≈ connections ÷ throughput, so p99 at 10 and 50
  connections follows the CPU limit above.
- That change measured back to back (the commit before it, then it, twice each, create
  at 10 connections for 30 s, 11:04–11:10 UTC on a machine slower than the one of the
  run above: a pure-Python loop took 1.45 s that takes about 0.5 s on a quick core):
  rujukan 23.0 / 24.9 → 19.7 / 19.8 ms of CPU per referral, the whole system 97 / 110 →
  85 / 85 ms, 19 / 17 → 22 / 22 req/s. On its own (a script calling the handler against
  PostgreSQL, 200 creates) the create handler went from 14.1 to 10.8 ms of CPU.
- In the run above (machine quiet: load average below 1 at its start) notifikasi used as
  much CPU as rujukan while referrals were created (44 % and 45 % of a core at 10
  connections, PostgreSQL 39 %): for each referral it plans two deliveries in a batch,
  then its delivery worker sends the partner's e-mail, and (until commit 6e39054) each
  delivery's `notification_sent` came back to it as an event. Until commit 547ae30 the worker sent
  each e-mail in a transaction of its own over a new SMTP connection (and a new TLS
  context where TLS is on); now each sender claims up to `DELIVERY_CLAIM` (5) rows per
  transaction and keeps one SMTP connection for the round. What remained per referral
  was three small transactions (the referral's batch, usually of one event at these
  rates, and one per `notification_sent`); since commit 6e39054 it is the referral's
  batch alone (see "A cheaper referral" below).
- In rujukan's py-spy profile (10 connections) ~70 % of samples are inside
  `handlers.create_referral`, mostly SQLAlchemy ORM execution and flush; nameko's RPC reply
  with publisher confirms is ~11 %, marshmallow validation ~2–3 %, Fernet ~1.5 %. The
  gateway mostly waits; its share is the RPC publish (with confirms) and marshmallow.

**Events: consumers now take them in batches.** Until commit df1a7b3 laporan and
notifikasi handled one event per transaction (pool pre-ping, inbox `INSERT … ON
CONFLICT`, the effect's reads and writes, `COMMIT`, then the ack): laporan 70–360 and
notifikasi 10–180 events/s here, notifikasi setting the end-to-end figure (it plans a
delivery per recipient and channel, writes inbox notifications, emits a
`notification_sent` per inbox delivery — which come back to it as events — and its
delivery worker sends the e-mails to the bench's SMTP sink). Now an `@event_handler` gets
the events of its queue that arrived together (up to `EVENT_BATCH_SIZE`, 50) and
`apply_once` records them with one inbox statement, reads what the effects need once
(`prepare`: laporan the batch's referral records, notifikasi every addressed recipient's
preferences and the webhook subscriptions), applies each event and commits once; the
event handlers have a connection of their own with a prefetch of 500 per queue. Measured
in one sitting, back to back on the same loaded machine (load average ~14), 5,000
`referral_requested` rows: with `EVENT_BATCH_SIZE=1` laporan 334/s, notifikasi 176/s,
end to end 176/s; with the default 50, laporan 1,299/s, notifikasi 695/s, end to end
695/s — 3.9× for both consumers. The relay publishes 1,500–2,600/s. What is left in the
way of 1,500 events/s end to end is notifikasi's own work per event (a template rendered
and four rows written for the inbox, until commit 6e39054 an outcome event that travelled
back through the broker, the e-mail worker's transaction per delivery competing for the
same two cores)
and RabbitMQ's (~20–30 % of a core in this phase, persistent messages to two queues per
event plus the outcome events).

**A cheaper referral (issue 21, items 3 and 4).** Cut since commit 9322378: notifikasi keeps
mitra's answer about a partner's contacts 1 s per process (`NOTIFIKASI_CONTACTS_CACHE_SECONDS`)
instead of asking `get_partner` for every batch of events (deliveries to channels without an
address were already not planned: commit db41dea); notifikasi consumes none of its own
`notification_sent` / `notification_failed` (what they call for is planned in the
transaction that records the outcome; the relay still publishes them, without
`mandatory`, for other subscribers); a day's missing-address count is one upsert instead
of an ORM insert-or-ignore and an update (half of a one-event batch's CPU in a cProfile of
`apply_once`); an idle relay sleeps until a commit NOTIFYs it (then waits 10 ms to batch
the burst) instead of reading its outbox every 50 ms; the gateway no longer validates
`POST /api/v1/referrals` (rujukan does, with the same contract and the same 422
answers). Consumers already committed a batch per transaction (commit df1a7b3) and the
relay already published a batch and then awaited its confirms together.
Measured with short runs on the shared machine (others took 0.4–1.3 cores during every
window), `python -m bench --no-docs --connections 1,10 --duration 6 --warmup 1
--operations= --sizes= --events 3000 --no-calibrate`, the commit before (9322378 plus the
per-process print) and after, back to back, three pairs between 01:57 and 02:07 UTC
(after = commit 46072b7 in pairs 1–2, c46de7b in pair 3). CPU ms per referral at 10
connections, by process:

| process | before (pairs 1 / 2 / 3) | after (pairs 1 / 2 / 3) |
|---|---:|---:|
| rujukan | 10.1 / 10.6 / 8.6 | 8.6 / 8.9 / 10.4 |
| notifikasi | 8.0 / 9.4 / 6.4 | 5.5 / 5.8 / 6.6 |
| PostgreSQL backends | 6.6 / 6.9 / 5.5 | 5.6 / 6.1 / 5.7 |
| RabbitMQ | 3.9 / 8.9 / 4.1 | 2.7 / 3.4 / 3.6 |
| mitra | 4.3 / 4.7 / 4.0 | 1.1 / 1.5 / 1.7 |
| gateway | 4.5 / 3.5 / 3.8 | 2.5 / 2.4 / 2.9 |
| laporan | 2.8 / 2.9 / 2.0 | 2.9 / 2.6 / 3.2 |
| relays (rujukan, notifikasi, laporan, mitra) | 2.8 / 4.0 / 1.9 | 2.3 / 2.2 / 2.5 |
| **whole system** | **43.1 / 51.2 / 36.5** | **31.4 / 33.3 / 36.5** |
| create req/s (baseline's) | 23 (126) / 14 (108) / 41 (265) | 34 (208) / 24 (127) / 25 (231) |
| events/s, relay (3,000 rows) | 1,172 / 744 / 2,046 | 1,345 / 1,085 / 2,038 |
| events/s, laporan | 391 / 231 / 708 | 600 / 261 / 546 |
| events/s, notifikasi (= end to end) | 111 / 91 / 295 | 335 / 159 / 282 |

mitra's share (the contacts asked per batch) fell by two thirds, the idle relays' to
nothing, the gateway's by a third, notifikasi's by a quarter; the whole system by 0–35 %
per pair (23 % on the sum of the three pairs), not to the third the issue asks (≤ 14 ms
of 43): rujukan's create
transaction and RPC alone (8.6–10.4 ms) and the PostgreSQL work of the referral's
transactions (5.5–6.9 ms) are more than that, and neither is notifikasi's, the relay's or
the gateway's. Create stays at 0.11–0.19× the baseline's (p99 4–7×): the baseline's
create is one row and one event to one consumer (5–7 ms of CPU), Bersinar's a referral
with its client, history and audit, read by two consumers. Events end to end stay at
160–335/s (target 1,500) with notifikasi the slowest consumer, then laporan; the relay
publishes 1,100–2,000/s. What notifikasi still does per `referral_requested` is an inbox
message (a delivery, a notification, an attempt row, through the ORM), a Jinja template
rendered, a `notification_sent` outbox row (published for other subscribers) and a log
line; reaching 1,500/s on two shared cores would need those rows written with one
executemany per batch outside the ORM, laporan's batch likewise, and a quieter machine
(the consumers' rates halved whenever others took a core).

A second pass took round-trips out of the create transaction and rows out of notifikasi's
ORM. A cProfile of `handlers.create_referral` on its migrated database showed the
transaction's time in its ten statements, not in Fernet, the HMAC digests or the payload
check (together under 1 ms of ~5 ms of CPU): the partner, its agreements and its active
referrals of the service type are now one statement when no lock is taken (creation; a
locked read still counts once the lock is held), the partner's name read with them serves
the `referral_requested` event, a new client's name tokens are inserted with no delete before
them, and every unit of work writes its outbox rows and the NOTIFY that wakes the
relay in one statement — six statements and the commit instead of ten. notifikasi adds up
a batch's deliveries, inbox notifications and first attempts as plain rows and inserts
them per table at commit (the consumer inbox unchanged: a redelivered event still applies
once), and renders an event's inbox text once for all its recipients (templates were
already compiled once per process). Measured the same way, two back-to-back pairs between
02:33 and 02:42 UTC (before = cfa7269, after = e75a394; others took 0.4–1.1 cores), CPU ms
per referral at 10 connections:

| process | before (pairs 1 / 2) | after (pairs 1 / 2) |
|---|---:|---:|
| rujukan | 9.6 / 9.8 | 9.8 / 9.2 |
| notifikasi | 5.3 / 5.2 | 5.8 / 5.7 |
| PostgreSQL backends | 5.3 / 5.0 | 5.7 / 5.3 |
| RabbitMQ | 4.6 / 6.0 | 5.3 / 6.2 |
| gateway | 2.7 / 2.9 | 2.9 / 2.8 |
| laporan | 2.5 / 3.1 | 2.7 / 2.8 |
| mitra | 1.3 / 1.0 | 1.1 / 1.3 |
| relays | 1.6 / 1.7 | 1.7 / 2.0 |
| **whole system** | **32.9 / 34.8** | **35.3 / 35.1** |
| create req/s (baseline's) | 25 (133) / 38 (228) | 33 (228) / 29 (241) |
| events/s, relay (3,000 rows) | 1,132 / 1,990 | 1,660 / 1,791 |
| events/s, laporan | 426 / 651 | 697 / 728 |
| events/s, notifikasi (= end to end) | 263 / 383 | 391 / 427 |

Events end to end rose by 10–50 % per pair (notifikasi still the slowest stage, far from
1,500/s); CPU per referral did not move beyond the noise of the shared machine, in the
bench or in-process (400 creations against the database, best of six runs: 5.19 ms of CPU
before, 5.12 after; wall 7.9 → 7.2 ms). Fewer round-trips shorten the transaction, not
rujukan's CPU: the handler's ~5 ms is mostly the per-statement cost of SQLAlchemy and
psycopg2 under eventlet, and the other ~4–5 ms rujukan spends per referral in the bench is
outside the handler (the nameko RPC around it, its reply, logging).

**A third pass (2026-12-05, 21:30–22:45 UTC).** py-spy of the two consumers during the
events phase (15,000 rows) showed where an event's CPU went besides its effect: a
marshmallow schema made anew for every event read through its contract and every event
emitted (`Schema.__init__` copies every field: a third of laporan's samples); the
outbox's multi-row `INSERT … VALUES` and its CTE compiled anew by SQLAlchemy for every
unit of work; the inbox and notifikasi's planned rows written through `insertmanyvalues`
(every row rendered and bound in Python); an `INFO` line per event (7–8 %); a
`basic.ack` frame per message (13 % of laporan). Cut since: each contract's schema is made
once (`bersinar/contracts/events.py`); the inbox, notifikasi's planned rows and the outbox
are each one statement whose text never changes, one array per column unnested by
PostgreSQL (`bersinar.db.insert_rows`), and a batch's missing-address counts one more;
one log line per batch (an event's own line is `DEBUG`); a batch's deliveries are acked
with one `multiple` ack up to the newest of the run done from the oldest
(`EventQueueConsumer`: none is acked before it is handled — a test kills a consumer
holding one event and finds all five back in the queue); a batch lingers 100 ms instead
of 5 ms, so at tens of referrals a second it holds several events and the inbox
statement, `prepare`'s reads and the commit are paid once for them. On the create path
a service sends its RPC reply transient and without awaiting the broker's confirm (nameko
sends it persistent and confirmed, to a reply queue that dies with the caller's
connection). Measured back to back on a quiet machine (load average 1.5–3, nothing else
running), the same command as above with 12 s rows and 5,000 events, two pairs between
22:48 and 22:53 UTC; before = a6a497a (the code when issue 21 was filed, with the
baseline already beside it), after = this commit. CPU ms per referral at 10 connections:

| process | before (pairs 1 / 2) | after (pairs 1 / 2) |
|---|---:|---:|
| rujukan | 5.9 / 6.8 | 5.2 / 5.9 |
| PostgreSQL backends | 3.6 / 4.4 | 3.5 / 4.1 |
| notifikasi | 4.0 / 4.8 | 1.9 / 2.6 |
| gateway | 2.6 / 3.0 | 1.8 / 2.2 |
| RabbitMQ | 2.4 / 3.0 | 1.5 / 1.9 |
| mitra | 2.6 / 3.0 | 0.3 / 0.3 |
| laporan | 1.4 / 1.8 | 1.3 / 1.7 |
| relays | 1.1 / 1.5 | 1.0 / 1.1 |
| **whole system** | **23.6 / 28.3** | **16.4 / 19.8** |
| create req/s (baseline's) | 80 (375) / 66 (287) | 108 (347) / 90 (355) |
| events/s, relay (5,000 rows) | 2,254 / 2,239 | 2,435 / 1,896 |
| events/s, laporan | 929 / 1,002 | 1,644 / 1,621 |
| events/s, notifikasi (= end to end) | 424 / 402 | 998 / 967 |

Earlier in the day, with others' benchmarks taking about a core, the same pairs measured
48.7 / 37.1 ms before and 26.9 / 29.7 ms after (before the acks and replies above).

**Where issue 21's targets stand** (the full run above, 22:30 UTC, and these pairs):
- *Reading a partner* ≥ 2× the baseline's read, p99 ≤ 2×: met (3.3–5.1× at 1, 10 and 50
  connections, p99 0.2–0.9×); `/match` is answered from the same read model.
- *Data scale and export*: met (list p99 at 1M 0.95× and 1.21× of 10k, indicators 0.36 s,
  the 1M export linear and every process under 200 MiB).
- *CPU per referral* ≤ ⅓ of the code's when the issue was filed: **not met**, 0.70× in the
  same sitting (23.6 → 16.4 and 28.3 → 19.8 ms). What is left is rujukan (5–6 ms: about
  5 ms in the create handler's six statements through the ORM and psycopg2 under
  eventlet, the rest nameko's RPC around it), PostgreSQL (3.5–4 ms over the referral's
  transactions in four databases), notifikasi, the gateway and RabbitMQ (about 2 ms each)
  and laporan. A third (8–9 ms) would need rujukan's create as one SQL statement or
  function (client, referral, history, name tokens and outbox in one round trip, no ORM),
  the gateway's per-request bookkeeping (key lookup, audit) off the create path, and
  notifikasi writing one row per inbox message instead of a delivery, a notification, an
  attempt and an outcome event.
- *Create* ≥ 1.0× the baseline's, p99 ≤ 1.5×: **not met**, 0.25–0.31× (p99 2.5–3.6×) in
  the pairs, 0.28× (p99 3.4×) in the full run. In closed loop on two cores the rate is
  the machine's CPU divided by the CPU a request costs: the baseline's create (one row,
  one event, one consumer) costs 4–5 ms of CPU, a referral 16–20 ms (its client sealed
  and indexed, history, consent, the outbox, two consumers, the notices). Parity needs
  the referral to cost what the baseline's one row costs; the cuts above would bring it
  to about 0.5×, more cores further.
- *Events* ≥ 1,500/s end to end: **not met**, 922/s in the full run and 967–998/s in the
  pairs (laporan 1,541–1,644/s, the relay 1,900–2,400/s, notifikasi the slowest stage;
  the baseline's single consumer 1,920/s). notifikasi spent, per event, a green thread
  (nameko's queue consumer spawns one per message, about a fifth of its samples), the
  contract check of the payload (a tenth) and the four rows of an inbox message. Since
  then an event handler's messages are collected in the consumer's own thread and a
  thread is spawned per batch (`EventQueueConsumer.handle_message`): four runs
  alternated on 2026-12-06 (`--connections 10 --duration 6 --operations= --sizes=
  --events 10000`, others ≤ 14 % of a core) measured 894 and 869 events/s end to end
  before, 993 and 1,046 after. What remains is the machine: over the phase the whole
  system spends about 1.85 ms of CPU per event (RabbitMQ 0.37, notifikasi 0.43,
  PostgreSQL 0.28, laporan 0.28, the relays 0.17), and 1,500/s on two cores allows
  1.33 ms. notifikasi's own log shows the sharing: 150–600 events/s while the relay and
  laporan run, 1,450–1,850/s once they are done. Reaching 1,500/s needs fewer hops per
  event (an inbox delivery's `notification_sent` is an outbox row, a relay publish and a
  broker route that no queue takes unless a national system binds one) or more cores.

**Reading a partner: one mitra process is the limit, then nameko RPC.** 40–114 req/s at
10 connections across the runs of the day (target 700). py-spy of mitra at 10
connections: mitra is busy on ~100 % of one core, 78 % of its samples in `get_partner`,
71 % in `handlers._load_partner` — one `SELECT` of the partner and three `selectinload`s
(offers, agreements, contacts) through the ORM — and 11–13 % in the RPC reply with
publisher confirms. The gateway idles in 60 % of its samples; its share is publishing the
RPC request with confirms (~17 %). So a read costs mitra ~20 ms of CPU on this loaded
machine (load average 6–9 during the profile), and a single mitra process on one core
answers 1 / 20 ms = 50 reads/s. Even at no cost in mitra, a read through one plain nameko
RPC measured 350–580 req/s on this machine: 700 req/s needs a read that does
not cross RPC every time (a gateway-side copy of partners kept fresh by mitra's
`partner_updated` events) or more mitra instances on more cores. The first is built
now (above, "Partner reads from the gateway's read model"): this profile is of the RPC
read, which the gateway still makes until its copy is loaded.

**Reading a referral** decrypts the client's identity (Fernet) and writes an access-audit
row per read, by design (every read of identity is audited), so it is a write as well as a
read.

**Lists do not grow with the data.** With migration `ruj0003` each filter of
`GET /referrals` has an index ending in the list's order (`partner_id, status,
created_at, id`; `partner_id, created_at, id`; `status, created_at, id`; unfiltered uses
`created_at, id`), so a page — the first or one after a cursor — is read straight off one
index: `EXPLAIN ANALYZE` shows the same index and 0.02–0.2 ms at 10k, 100k and 1M
(table "What PostgreSQL does"). Before `ruj0003` (single-column `partner_id` and `status`
indexes and `created_at, id`), on the same 1M generated referrals, the first page took
62.7 ms for `status = 'transferred'` (a backward walk of the `created_at` index past the
months of referrals still in care), 10.4 ms for one partner's `cancelled`, 4.3 ms for one
partner's `accepted` (a `BitmapAnd` of two indexes, then a sort), each growing with the
table; with it, 0.02 ms for all eight filters tried. The cursor was already pushed down
into rujukan's query (keyset on `created_at, id`, `limit + 1` rows), so nothing loads a
whole collection; the gateway's `page_of` serves only bounded collections (partners,
keys, a month's reports).
What a list costs is constant: in rujukan's py-spy profile at one connection ~38 % of
samples are the list handler (ORM rows, the page's clients — now one `selectin` query per
page instead of one query per referral, `models.Referral.client` — and the count of each
client's episodes), ~24 % sending the ~35 KB reply to RabbitMQ. p99, the sixth worst of
600, moves with the machine's other load more than with the data, which is why the
verdict is a ratio measured in one run — and even so it moves: in the run above the 10k
measurements ran while a full `make test` and other people's runs kept the load average
at 13–15, the 1M ones after they ended (load ~11), so its ratios (0.89× and 0.42×) flatter
the code. Fairer readings: p50 at one connection in earlier runs of the day, 56 / 56 / 56
ms at 10k / 100k / 1M (load 6) and 102 / 104 / 108 ms (load 12–16, where the 10-connection
p50 went from 396 to 604 ms as the load rose from 12 to 16 and p99 grew 1.45×); and the
plans, the same index at every size in 0.05–0.13 ms. The one part of rujukan that does
grow with the data is its minute timer (the occupancy gauges count the accepted and
admitted referrals, ~50k at 1M), not the list.

**Indicators: counted in SQL.** `handlers.indicators` loaded every referral record open
or ended since January into Python (`episodes`) and counted there: 10.1 s at 1M records
(one call, measured on the function). `services/laporan/queries.py` asks PostgreSQL for
each figure with one `GROUP BY partner_id` over the index of the moment it depends on
(migration `lap0003`: answered `responded_at`; ended `ended_at`; admitted `admitted_at,
partner_id`; still in care, a partial index `WHERE ended_at IS NULL`)
and fetches only the month's answers for the median response time: 0.28–0.39 s at 1M
records on the function, the same figures exactly (a test compares both on
PostgreSQL). Its five statements took 27–64 ms each at 1M. What it does is proportional
to the referrals *of the period* (a month's ~28k answers and exits, the year's admissions
at 1M), not to the whole table: at 100k it was 0.05–0.19 s over HTTP; at 1M 0.52 s on a
machine at load 6 and 1.4 s in a run at load 12–16 (other people's test suites and
benchmarks on the same two cores), both before the change that follows. The answered and
ended indexes first made the database visit one heap page per counted row (bitmap heap
scans); they now carry the columns their counts read (`INCLUDE`), so those counts are
index-only like the admissions': on the same 1M records, measured back to back on the
function at load 15, 0.29–0.42 s with them against 0.86–1.08 s without; over HTTP in the
run above, 0.43 s at 1M.
The next step, if a period's referrals grow much further, is a per-partner, per-month
summary kept by laporan's event handlers, so a period's figures are a handful of rows.

**FHIR Bulk Data export: linear, in bounded memory.** Three full runs on 2026-12-05
(`--sizes 10000,100000,1000000 --operations= --connections 1`), a national key exporting
every referral (`_type=Task`) at each size, on a machine other sessions' test suites and
benchmarks shared (load average 3–7; others took up to about a core). Seconds from
kick-off to manifest + of the download (per 1,000 referrals); the files were 8, 81 and
814 MiB:

| run (UTC) | 10k | 100k | 1M | 1M ÷ 100k |
|---|---:|---:|---:|---:|
| 1 (21:29) | 2.1 + 0.0 (0.21) | 31.9 + 0.4 (0.32) | 226.3 + 3.0 (0.23) | 0.71× |
| 2 (21:51) | 4.3 + 0.1 (0.44) | 26.6 + 0.3 (0.27) | 376.3 + 4.8 (0.38) | 1.42× |
| 3 (22:13) | 3.2 + 0.1 (0.33) | 31.3 + 0.8 (0.32) | 260.3 + 3.6 (0.26) | 0.82× |

Within the 1.5× target every time; the runs' spread is the machine, not the size (run 1's
1M export, sampled every 10 s from 240k to 480k referrals written, wrote 3,700–5,600
referrals/s with no downward trend). Every manifest count and every file's lines equalled
rujukan's referrals. The time is in making the export, not in reading it: rujukan renders
and pseudonymises 200 referrals per RPC (30–46 % of a core), the gateway maps them to
Tasks and writes chunks of 500 lines (10–16 %), the PostgreSQL backends 9–19 %; the
download then streams the stored chunks (170–270 MiB/s at 1M). Memory does not move with
the size: the gateway peaked at 131–134 / 134–135 / 136–137 MiB at 10k / 100k / 1M,
rujukan at 102–103 MiB at every size, every other process below; the largest PostgreSQL
backend's VmRSS was 55 MiB at 10k and 161 MiB from 100k on, most of it shared buffers it
touched (its PSS 16–25 MiB). Nothing in the path grows with the export but the rows it
writes: rujukan's pages are keyset (the next starts after the last row's `(created_at,
id)` on `ix_referrals_created`, never an OFFSET), a page's clients come in one `selectin`
query and their episode counts in one grouped query on `ix_referrals_client_id`, the
gateway holds only the chunk being filled and a download only the chunk being sent. The
files of a 1M export (814 MiB of NDJSON, TOAST-compressed) grew the run's database folder
by about 0.1 GB until the export was deleted.

**Accepting** takes the receiving partner's read-model row `FOR UPDATE` for the capacity
check, so accepts to one partner queue behind each other (five partners here), and each
emits `referral_accepted` to laporan and notifikasi.

**Submitting a report** once cost more the more referrals the partner had: the prefill
(asked twice per submission, for the flags and for the answer) loaded every referral
record of the partner open or ended since January, and referrals never admitted stay open
for ever. It now reads only the month's episodes — in care at some moment of the month,
admitted in it or ended in it (`handlers.month_episodes`), which a test on PostgreSQL
shows give the same counts as all of them — so its cost follows the partner's caseload,
not its history.

**The shared database.** PostgreSQL here allows 100 connections for everyone. With four
benchmark runs at once it refused new ones ("too many clients already") and the services
answered 503 `SERVICE_UNAVAILABLE`, as designed. The bench runs its processes with
`DB_POOL_SIZE=10`, `DB_POOL_OVERFLOW=0` (a connection per worker, kept: a pool smaller
than the workers opens and closes a connection per call, which costs PostgreSQL a
process each time); the machine's server now allows 300. Once, another person's fast shutdown of
PostgreSQL ended a run in the events phase, and once someone's clean-up dropped a running
benchmark's databases; each time the harness tore down the rest and exited 1.

**Memory is not a concern**: every service process stays at 70–105 MiB resident under
load and the gateway, the largest, at 130–152 MiB (its directory copy, the export's
chunks), under 200 MB; so does every PostgreSQL backend during the 1M export (161 MiB
resident at most, most of it shared buffers: 19–23 MiB its own).
"""
