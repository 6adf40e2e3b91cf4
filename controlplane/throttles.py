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
