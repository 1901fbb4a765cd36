"""What two or more Bersinar services need: the event envelope, reliable messaging
(outbox, inbox, retries and parking), database sessions and migrations, metrics,
configuration and logging. No domain rules live here."""
