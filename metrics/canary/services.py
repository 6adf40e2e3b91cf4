"""Writes of canaries: a split collapsed (an arm stopped or promoted), published by the control plane
on a guardrail breach, or saved as a draft for a publisher to review ("Stop canary", "Promote arm")."""

from __future__ import annotations

import copy
import json
from typing import Any

from django.db import transaction

from controlplane.errors import Conflict, InvalidInput
from routing import services as routing_services
from routing.models import Policy, PolicyVersion


def split_collapsed(document: Any, *, route: str, arm: str, keep: bool) -> dict[str, Any]:
    """The document with the split on `route` collapsed: `keep=False` moves `arm`'s weight to the
    control (stop the arm); `keep=True` gives `arm` every other arm's weight (promote it)."""
    doc = copy.deepcopy(document)
    split = (((doc.get("routes") or {}).get(route)) or {}).get("split")
    if not split:
        raise InvalidInput(f"Route '{route}' has no split.", {"route": ["no split"]})
    arms = split["arms"]
    names = [a["name"] for a in arms]
    if arm not in names:
        raise InvalidInput(f"The split on '{route}' has no arm '{arm}'.", {"arm": ["no such arm"]})
    control = next((a for a in arms if "route" not in a and "model" not in a), arms[0])
    target = next(a for a in arms if a["name"] == arm)
    if keep:
        for a in arms:
            a["weight"] = 100 if a is target else 0
    else:
        if target is control:
            raise InvalidInput(f"'{arm}' is the control arm; stop another arm.", {"arm": ["the control arm"]})
        control["weight"] += target["weight"]
        target["weight"] = 0
    return doc


@transaction.atomic
def canary_arm_stop(*, policy: Policy, route: str, arm: str, summary: str, evidence: dict[str, Any]) -> PolicyVersion:
    """Publish, as the control plane, the live document with `arm`'s weight moved to the control
    (a guardrail breach with `on_breach: "stop"`); the audit comment carries the evidence."""
    policy = Policy.objects.select_related("live_version").get(pk=policy.pk)
    live = policy.live_version
    if live is None or live.number is None:
        raise Conflict("The policy has no live version.", {})
    document = split_collapsed(live.document, route=route, arm=arm, keep=False)
    breaches = [b for b in evidence.get("numbers", {}).get("breaches", []) if b.get("arm") == arm]
    comment = (
        f"Canary guardrail breached on route {route}: arm {arm} stopped by the control plane "
        f"(its weight moved to the control). {summary}. Evidence: {json.dumps(breaches, default=str)[:1500]}"
    )
    return routing_services.policy_publish_document(
        policy=policy,
        document=document,
        user=None,
        comment=comment[:2000],
        expected_live=live.number,
        actor_label=routing_services.CONTROL_PLANE_ACTOR,
    )


@transaction.atomic
def canary_draft_collapse(*, policy: Policy, route: str, arm: str, keep: bool, user: Any) -> PolicyVersion:
    """Save a draft of the live document with the split collapsed ("Promote arm" with `keep`,
    "Stop canary" without) for a publisher to review; refused while a draft exists."""
    from routing import selectors as routing_selectors

    policy = Policy.objects.select_related("live_version").get(pk=policy.pk)
    if policy.live_version is None:
        raise Conflict("The policy has no live version.", {})
    if routing_selectors.policy_draft(policy) is not None:
        raise Conflict("This policy already has a draft: publish or discard it first.", {"draft": ["a draft exists"]})
    document = split_collapsed(policy.live_version.document, route=route, arm=arm, keep=keep)
    return routing_services.draft_save(policy=policy, document=document, user=user, expected_revision=0)
