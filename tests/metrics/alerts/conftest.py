"""The alert tests' webhook receivers listen on 127.0.0.1: let outbound requests reach this machine
(tests/security/test_outbound.py holds the rule that refuses it by default)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _receivers_on_this_machine(settings: Any) -> None:
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
