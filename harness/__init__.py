"""The harness shared by the tests, the benchmark (bench/) and the fault suite (chaos/):
whole systems started as `make run` starts them, the run's own broker vhost and
databases, events made by their producers' code, load generators and local stand-ins
for the world outside (SMTP, webhook receivers). It stands on every component and on
nothing of tests/, bench/ or chaos/ (docs/architecture.md#layout)."""
