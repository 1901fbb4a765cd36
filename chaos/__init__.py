"""The fault suite (``make chaos``): see chaos/run.py and docs/chaos.md."""
