"""A nameko timer whose interval comes from configuration. Like every nameko timer it
fires in every running instance: what it emits must be guarded by the database."""

from __future__ import annotations

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    def __init__(self, config_key: str, default: float, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.config_key = config_key

    def setup(self):
        super().setup()
        self.interval = float(self.container.config.get(self.config_key) or self.interval)


timer = ConfiguredTimer.decorator
