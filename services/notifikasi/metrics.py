"""notifikasi's own Prometheus metrics, at module level (one registry per process).
Labels are channel, event type and outcome only: never a recipient's address."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# from an instant inbox write to a webhook retried over hours
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)

SENT = Counter(
    "bersinar_notifications_sent_total",
    "Notifications delivered, by channel and event type",
    ["channel", "event_type"],
)
FAILED = Counter(
    "bersinar_notifications_failed_total",
    "Failed delivery attempts, by channel and event type",
    ["channel", "event_type"],
)
RETRIED = Counter(
    "bersinar_notifications_retried_total",
    "Failed delivery attempts scheduled for another try",
    ["channel", "event_type"],
)
GAVE_UP = Counter(
    "bersinar_notifications_given_up_total",
    "Deliveries given up after their last attempt or a permanent failure",
    ["channel", "event_type"],
)
SKIPPED = Counter(
    "bersinar_notifications_skipped_total",
    "Deliveries not made because the recipient has no address for the channel",
    ["channel", "event_type"],
)
ADDRESS_NOTICES = Counter(
    "bersinar_address_notices_total",
    "Notices to admins that a recipient has no address for a channel (once a day each)",
)
LATENCY = Histogram(
    "bersinar_notification_latency_seconds",
    "Time from the event to the notification sent",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
PENDING = Gauge(
    "bersinar_notifications_pending", "Deliveries waiting to be sent, by channel", ["channel"]
)


def record(outcome) -> None:
    """Count one attempt's outcome (``handlers.Outcome``) once its transaction committed."""
    labels = (outcome.channel, outcome.event_type)
    if outcome.result == "sent":
        SENT.labels(*labels).inc()
        if outcome.latency is not None:
            LATENCY.labels(outcome.channel).observe(outcome.latency)
        return
    if outcome.result == "cancelled":
        return
    if outcome.result == "skipped":
        SKIPPED.labels(*labels).inc()
        return
    FAILED.labels(*labels).inc()
    if outcome.result == "retry":
        RETRIED.labels(*labels).inc()
    elif outcome.result == "gave_up":
        GAVE_UP.labels(*labels).inc()


def record_planned(delivered: list[dict], notices: int = 0) -> None:
    """Count what handling events did at once: inbox messages written, deliveries not
    planned for want of an address, and the admins' notices about it."""
    for item in delivered:
        if item["result"] == "skipped":
            SKIPPED.labels(item["channel"], item["event_type"]).inc()
            continue
        SENT.labels(item["channel"], item["event_type"]).inc()
        LATENCY.labels(item["channel"]).observe(item["latency"])
    if notices:
        ADDRESS_NOTICES.inc(notices)
