"""Notification channels: their fields checked and cleaned (webhook URL and secret, email
addresses, minimum severity), created, changed, deleted and tested by a publisher. What is sent
through them, and when, is `metrics.alerts.delivery`."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone

from controlplane.errors import InvalidInput
from controlplane.outbound import url_problem
from metrics.alerts.access import PERM_CHANNELS_MANAGE, Actor, actor_label, require, text_clean
from metrics.alerts.delivery import SendResult, send, test_payload
from metrics.models import NotificationChannel, Severity
from routing.models import Policy

MAX_EMAILS = 50
_url_check = URLValidator(schemes=["http", "https"])


def channel_fields_check(
    *, kind: str, name: Any, url: Any = "", secret: Any = "", emails: Any = (), min_severity: Any = Severity.TICKET
) -> dict[str, Any]:
    """The channel's fields cleaned, or InvalidInput naming every bad field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}

    def take(field_name: str, fn: Any) -> None:
        try:
            cleaned[field_name] = fn()
        except InvalidInput as exc:
            for path, reasons in exc.errors.items():
                errors.setdefault(path, []).extend(reasons)

    if kind not in NotificationChannel.Kind.values:
        errors["kind"] = [f"must be one of {', '.join(NotificationChannel.Kind.values)}"]
    take("name", lambda: text_clean(name, "name", required=True, max_length=200))
    if min_severity not in Severity.values:
        errors["min_severity"] = [f"must be one of {', '.join(Severity.values)}"]
    else:
        cleaned["min_severity"] = min_severity
    if kind == NotificationChannel.Kind.WEBHOOK:
        if emails:  # a field of the other kind would be dropped without a word
            errors["emails"] = ["only for email channels"]

        def url_clean() -> str:
            text = text_clean(url, "url", required=True, max_length=2000)
            try:
                _url_check(text)
            except DjangoValidationError:
                raise InvalidInput("Invalid url.", {"url": ["must be an http:// or https:// URL"]}) from None
            if (problem := url_problem(text)) is not None:
                raise InvalidInput("Invalid url.", {"url": [problem]})
            return text

        take("url", url_clean)
        take(
            "secret", lambda: text_clean(secret, "secret", required=False, max_length=200) or secrets.token_urlsafe(32)
        )
        cleaned["emails"] = []
    elif kind == NotificationChannel.Kind.EMAIL:
        for other, value in (("url", url), ("secret", secret)):
            if value:
                errors[other] = ["only for webhook channels"]
        if not isinstance(emails, list | tuple) or not emails:
            errors["emails"] = ["a non-empty list of email addresses"]
        elif len(emails) > MAX_EMAILS:
            errors["emails"] = [f"at most {MAX_EMAILS} addresses"]
        else:
            good: dict[str, str] = {}  # one mail per address, however often it is listed
            for i, address in enumerate(emails):
                try:
                    validate_email(address if isinstance(address, str) else "")
                    good.setdefault(address.strip().lower(), address.strip())
                except DjangoValidationError:
                    errors[f"emails.{i}"] = ["not an email address"]
            cleaned["emails"] = list(good.values())
        cleaned["url"], cleaned["secret"] = "", ""
    if errors:
        raise InvalidInput("; ".join(f"{k}: {v[0]}" for k, v in list(errors.items())[:3]), errors)
    return cleaned


@transaction.atomic
def channel_create(
    *,
    user: Actor,
    kind: str,
    name: str,
    url: str = "",
    secret: str = "",
    emails: Sequence[str] = (),
    min_severity: str = Severity.TICKET,
    enabled: bool = True,
    policy: Policy | None = None,
) -> NotificationChannel:
    """Create a webhook or email channel; a webhook without a secret gets a random one."""
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    cleaned = channel_fields_check(
        kind=kind, name=name, url=url, secret=secret, emails=list(emails), min_severity=min_severity
    )
    channel = NotificationChannel(kind=kind, enabled=bool(enabled), policy=policy, **cleaned)
    if not channel.enabled:
        channel.disabled_at, channel.disabled_reason = timezone.now(), f"disabled by {actor_label(user)}"
    channel.save()
    return channel


_UNSET: Any = object()


@transaction.atomic
def channel_update(
    *,
    channel: NotificationChannel,
    user: Actor,
    name: Any = _UNSET,
    url: Any = _UNSET,
    secret: Any = _UNSET,
    emails: Any = _UNSET,
    min_severity: Any = _UNSET,
    enabled: Any = _UNSET,
    policy: Any = _UNSET,
) -> NotificationChannel:
    """Change a channel. Enabling a disabled channel (by hand or after failures) resets its failure count."""
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    channel = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    given = {"name": name, "url": url, "secret": secret, "emails": emails, "min_severity": min_severity}
    merged = {k: (getattr(channel, k) if v is _UNSET else v) for k, v in given.items()}
    if merged["secret"] in (None, "") and channel.kind == NotificationChannel.Kind.WEBHOOK:
        merged["secret"] = channel.secret if secret is _UNSET else ""
    cleaned = channel_fields_check(kind=channel.kind, **merged)
    for k, v in cleaned.items():
        setattr(channel, k, v)
    if policy is not _UNSET:
        channel.policy = policy
    if enabled is not _UNSET:
        if enabled and not channel.enabled:
            channel.enabled, channel.consecutive_failures = True, 0
            channel.disabled_at, channel.disabled_reason = None, ""
        elif not enabled and channel.enabled:
            channel.enabled = False
            channel.disabled_at, channel.disabled_reason = timezone.now(), f"disabled by {actor_label(user)}"
    channel.save()
    return channel


@transaction.atomic
def channel_delete(*, channel: NotificationChannel, user: Actor) -> None:
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    channel.delete()


def channel_test(*, channel: NotificationChannel, user: Actor) -> SendResult:
    """Send a test notification now, synchronously; the channel's failure count is not touched."""
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    now = timezone.now()
    payload = test_payload(channel, at=now, user=user)
    return send(
        channel,
        payload,
        delivery_id=f"test-{secrets.token_hex(8)}",
        event="test",
        subject=f"[Signalbox] Test notification for {channel.name}",
    )
