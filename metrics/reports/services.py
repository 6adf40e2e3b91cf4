"""Every write of the monthly report: marking a month reviewed (audited)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.errors import InvalidInput, NotAllowed
from metrics.models import ReportReview
from routing.models import AuditEntry
from routing.roles import PERM_EDIT_POLICY

# -- monthly report reviews ------------------------------------------------------------------------

REVIEW_NOTE_MAX = 2000
REVIEW_AUDIT_ACTION = AuditEntry.Action.REPORT_REVIEW


@transaction.atomic
def report_review_mark(*, policy: Any, month: date, user: Any, note: str = "", now: datetime | None = None) -> Any:
    """Record that `user` reviewed `policy`'s monthly report of `month` (editor role or above),
    and write it to the audit log. `user=None` is the system itself."""
    if user is not None and (not getattr(user, "is_active", False) or not user.has_perm(PERM_EDIT_POLICY)):
        raise NotAllowed("You do not have permission to mark reports reviewed (editor role or above).")
    now = (now or timezone.now()).astimezone(UTC)
    if not isinstance(month, date) or isinstance(month, datetime) or month.day != 1:
        raise InvalidInput("The month must be the first day of a month.", {"month": ["expected YYYY-MM"]})
    if month > now.date():
        raise InvalidInput(f"{month:%B %Y} has not started yet: it can't be reviewed.", {"month": ["in the future"]})
    note = (note or "").strip()
    if len(note) > REVIEW_NOTE_MAX:
        raise InvalidInput("The note is too long.", {"note": [f"At most {REVIEW_NOTE_MAX} characters."]})
    if "\x00" in note:
        raise InvalidInput("The note holds a NUL character.", {"note": ["the NUL character is not allowed"]})
    label = user.get_username() if user is not None else "system"
    review = ReportReview.objects.create(
        policy=policy,
        month=month,
        reviewed_by=user if getattr(user, "pk", None) else None,
        reviewed_by_label=label,
        reviewed_at=now,
        note=note,
    )
    AuditEntry.objects.create(
        actor=user if getattr(user, "pk", None) else None,
        actor_label=label,
        action=REVIEW_AUDIT_ACTION,
        policy=policy,
        target=f"{policy.slug}:report:{month:%Y-%m}",
        comment=note,
    )
    return review
