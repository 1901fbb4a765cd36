"""The gateway's endpoints, one mixin per area; gateway.service composes them."""

from bersinar import codes
from bersinar.codes import STAFF  # noqa: F401 - the roles most routes name

EVERYONE = tuple(codes.ROLES)
