"""The gateway's endpoints, one mixin per area; gateway.service composes them."""

STAFF = ("admin", "officer")
EVERYONE = ("admin", "officer", "partner", "national", "ops")
