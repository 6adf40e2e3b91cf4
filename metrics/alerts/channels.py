"""Notification channels: their fields checked and cleaned for each kind (webhook URL and secret,
email addresses, Slack and Teams webhook URLs, PagerDuty routing key and endpoint, minimum
severity), created, changed, deleted and tested by a publisher. `channel_fields_check` is the one
place these rules live: the API and the admin both call it. What is sent through a channel, and
when, is `metrics.alerts.delivery`."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone

from controlplane.errors import InvalidInput
from controlplane.outbound import host_is_local, url_problem
from metrics.alerts.access import PERM_CHANNELS_MANAGE, Actor, actor_label, require, text_clean
from metrics.alerts.delivery import SendResult, pagerduty_send, send, test_data
from metrics.alerts.messages import PAGERDUTY_EVENTS_URL, PAGERDUTY_ROUTING_KEY
from metrics.models import NotificationChannel, Severity
from routing.models import Policy

MAX_EMAILS = 50
_url_check = URLValidator(schemes=["http", "https"])
Kind = NotificationChannel.Kind

# The fields each kind takes beside name and min_severity; a field of another kind is refused by name.
KIND_FIELDS: dict[str, frozenset[str]] = {
    Kind.WEBHOOK: frozenset({"url", "secret"}),
    Kind.EMAIL: frozenset({"emails"}),
    Kind.SLACK: frozenset({"url"}),
    Kind.TEAMS: frozenset({"url"}),
    Kind.PAGERDUTY: frozenset({"routing_key", "url"}),
}
_SERVICE: dict[str, str] = {Kind.SLACK: "Slack", Kind.TEAMS: "Teams", Kind.PAGERDUTY: "PagerDuty"}


def _kinds_taking(field: str) -> str:
    kinds = [k for k in Kind.values if field in KIND_FIELDS[k]]
    return ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]


def _url_clean(url: Any, kind: str) -> str:
    """An http(s) URL the outbound rules allow; a service's URL must be https, except to this
    machine or a private network when OUTBOUND_ALLOW_PRIVATE_NETWORKS lets channels reach them
    (a relay on the same network)."""
    if kind == Kind.PAGERDUTY and (url is None or (isinstance(url, str) and not url.strip())):
        return PAGERDUTY_EVENTS_URL
    text = text_clean(url, "url", required=True, max_length=2000)
    try:
        _url_check(text)
    except DjangoValidationError:
        raise InvalidInput("Invalid url.", {"url": ["must be an http:// or https:// URL"]}) from None
    if (problem := url_problem(text)) is not None:
        raise InvalidInput("Invalid url.", {"url": [problem]})
    if kind in _SERVICE:
        parsed = httpx.URL(text)
        local = settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS and host_is_local(parsed.host)
        if parsed.scheme != "https" and not local:
            reason = f"must be an https:// URL ({_SERVICE[kind]} takes https only)"
            raise InvalidInput("Invalid url.", {"url": [reason]})
    return text


def _routing_key_clean(value: Any) -> str:
    text = text_clean(value, "routing_key", required=True, max_length=200)
    if not PAGERDUTY_ROUTING_KEY.fullmatch(text):
        reason = "must be the 32-character integration key (letters and digits) of an Events API v2 integration"
        raise InvalidInput("Invalid routing_key.", {"routing_key": [reason]})
    return text


def channel_fields_check(
    *,
    kind: str,
    name: Any,
    url: Any = "",
    secret: Any = "",
    emails: Any = (),
    routing_key: Any = "",
    min_severity: Any = Severity.TICKET,
) -> dict[str, Any]:
    """The channel's fields cleaned, or InvalidInput naming every bad field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {"url": "", "secret": "", "emails": [], "routing_key": ""}

    def take(field_name: str, fn: Any) -> None:
        try:
            cleaned[field_name] = fn()
        except InvalidInput as exc:
            for path, reasons in exc.errors.items():
                errors.setdefault(path, []).extend(reasons)

    if kind not in Kind.values:
        errors["kind"] = [f"must be one of {', '.join(Kind.values)}"]
    take("name", lambda: text_clean(name, "name", required=True, max_length=200))
    if min_severity not in Severity.values:
        errors["min_severity"] = [f"must be one of {', '.join(Severity.values)}"]
    else:
        cleaned["min_severity"] = min_severity
    if kind in Kind.values:
        taken = KIND_FIELDS[kind]
        given = {"url": url, "secret": secret, "emails": emails, "routing_key": routing_key}
        for other, value in given.items():
            if value and other not in taken:  # a field of another kind would be dropped without a word
                errors[other] = [f"only for {_kinds_taking(other)} channels"]
        if "url" in taken:
            take("url", lambda: _url_clean(url, kind))
        if "secret" in taken:
            take(
                "secret",
                lambda: text_clean(secret, "secret", required=False, max_length=200) or secrets.token_urlsafe(32),
            )
        if "routing_key" in taken:
            take("routing_key", lambda: _routing_key_clean(routing_key))
        if "emails" in taken:
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
    routing_key: str = "",
    min_severity: str = Severity.TICKET,
    enabled: bool = True,
    policy: Policy | None = None,
) -> NotificationChannel:
    """Create a channel of any kind; a webhook without a secret gets a random one, a PagerDuty
    channel without a URL PagerDuty's Events API v2 endpoint."""
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    cleaned = channel_fields_check(
        kind=kind,
        name=name,
        url=url,
        secret=secret,
        emails=list(emails) if isinstance(emails, list | tuple) else emails,
        routing_key=routing_key,
        min_severity=min_severity,
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
    routing_key: Any = _UNSET,
    min_severity: Any = _UNSET,
    enabled: Any = _UNSET,
    policy: Any = _UNSET,
) -> NotificationChannel:
    """Change a channel. Enabling a disabled channel (by hand or after failures) resets its failure
    count; a routing key not given stays as it is."""
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    channel = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    given = {
        "name": name,
        "url": url,
        "secret": secret,
        "emails": emails,
        "routing_key": routing_key,
        "min_severity": min_severity,
    }
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
    """Send a test notification now, synchronously; the channel's failure count is not touched.

    PagerDuty has no test event: the test triggers an info-severity event under a dedup key of its
    own and, once that is taken, resolves it, so nothing stays open on the service."""
    require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    data = test_data(channel, at=timezone.now(), user=user)
    if channel.kind == Kind.PAGERDUTY:
        key = f"signalbox-test-{secrets.token_hex(8)}"
        triggered = pagerduty_send(channel, data, action="trigger", dedup_key=key)
        if not triggered.ok:
            return triggered
        return pagerduty_send(channel, data, action="resolve", dedup_key=key)
    return send(channel, data, delivery_id=f"test-{secrets.token_hex(8)}", event="test")
