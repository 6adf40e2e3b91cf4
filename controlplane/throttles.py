"""Request rates of the management API per user (and per address for anonymous requests), read
from settings on every request so a deployment or a test can change them (429 with Retry-After)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling

from controlplane.ratelimit import drf_rate


class UserRateThrottle(throttling.UserRateThrottle):
    setting = "API_RATE_LIMIT_USER"

    def get_rate(self) -> str | None:
        return drf_rate(getattr(settings, self.setting), setting=self.setting)


class AnonRateThrottle(throttling.AnonRateThrottle):
    setting = "API_RATE_LIMIT_ANON"

    get_rate = UserRateThrottle.get_rate


class ComputeRateThrottle(throttling.UserRateThrottle):
    """The endpoints that run the engine or a replay on a document the caller sends (preview,
    validate, what-if) cost far more CPU than a read: each user has a budget of its own for them,
    counted apart from (and on top of) API_RATE_LIMIT_USER."""

    scope = "compute"
    setting = "API_RATE_LIMIT_COMPUTE"

    get_rate = UserRateThrottle.get_rate


# The throttles of a compute endpoint: the general ones plus its own budget.
COMPUTE_THROTTLES = [AnonRateThrottle, UserRateThrottle, ComputeRateThrottle]
