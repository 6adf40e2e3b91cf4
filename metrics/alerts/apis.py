"""The alerts and notification channels API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput, NotFound
from metrics.alerts import access, channels, lifecycle
from metrics.alerts import selectors as alert_selectors
from metrics.alerts.detectors import DETECTORS
from metrics.models import Alert, NotificationChannel, Severity
from metrics.shapes import I, S
from routing import selectors as routing_selectors
from routing.apis import (
    PAGE_PARAMETERS,
    StrictSerializer,
    can,
    page_of,
    paginate,
)

# --- alerts and notification channels (metrics.alerts) -------------------------------------------
# Viewers read alerts, editors acknowledge and resolve them, publishers manage the channels.

CanViewAlerts = can(access.PERM_ALERTS_VIEW)
CanHandleAlerts = can(access.PERM_ALERTS_HANDLE)
CanManageChannels = can(access.PERM_CHANNELS_MANAGE)


class AlertOutput(serializers.Serializer):
    id = I()
    policy = S(source="policy.slug")
    route = S(help_text='"" = the whole policy (its budget)')
    detector = S()
    severity = S(help_text="page, ticket or info: the highest seen while active")
    status = S(help_text="open, acknowledged or resolved")
    summary = S()
    evidence = serializers.JSONField(
        help_text="test, window, baseline, statistic, p_value, interval, numbers, "
        "check (the check that fired) and checks (each check's status)"
    )
    opened_at = serializers.DateTimeField()
    last_evaluated_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class DeliveryOutput(serializers.Serializer):
    channel = S(source="channel.name")
    channel_id = I()
    status = S(help_text="pending, sent, failed (will retry) or given_up")
    attempts = I()
    response_status = I(allow_null=True)
    last_error = S()
    sent_at = serializers.DateTimeField(allow_null=True)


class AlertEventOutput(serializers.Serializer):
    id = I()
    kind = S(help_text="opened, escalated, acknowledged, resolved or reopened")
    at = serializers.DateTimeField()
    actor = S(source="actor_label", help_text='username, or "system" for the evaluator')
    note = S()
    severity = S()
    summary = S()
    deliveries = DeliveryOutput(many=True)


class AlertDetailOutput(AlertOutput):
    events = AlertEventOutput(many=True, help_text="the alert's history, oldest first")


def _alert_detail(alert_id: int) -> Response:
    return Response(AlertDetailOutput(alert_selectors.alert_get(alert_id)).data)


class AlertListApi(APIView):
    permission_classes = [CanViewAlerts]

    class FilterSerializer(serializers.Serializer):
        policy = S(required=False, max_length=63, help_text="Policy slug.")
        status = serializers.ChoiceField(choices=Alert.Status.values, required=False)
        detector = serializers.ChoiceField(choices=DETECTORS, required=False)
        route = S(
            required=False,
            allow_blank=True,
            max_length=200,
            trim_whitespace=False,
            help_text='Route name; "" for policy-wide alerts.',
        )
        severity = serializers.ChoiceField(choices=Severity.values, required=False)
        since = serializers.DateTimeField(required=False, help_text="Active at or after this moment (ISO 8601).")
        until = serializers.DateTimeField(required=False, help_text="Opened before this moment (ISO 8601).")

    @extend_schema(
        operation_id="alerts_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=page_of(AlertOutput),
        summary="Alerts, newest first",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        if "policy" in values:
            values["policy"] = routing_selectors.policy_get(values["policy"])
        if values.get("since") and values.get("until") and values["until"] <= values["since"]:
            raise InvalidInput("'until' must be after 'since'.", {"until": ["must be after since"]})
        return paginate(request, self, alert_selectors.alert_list(**values), AlertOutput)


class AlertDetailApi(APIView):
    permission_classes = [CanViewAlerts]

    @extend_schema(
        operation_id="alerts_read",
        responses=AlertDetailOutput,
        summary="One alert with its history and the deliveries of each step",
    )
    def get(self, request: Request, alert_id: int) -> Response:
        return _alert_detail(alert_id)


class AlertAcknowledgeApi(APIView):
    permission_classes = [CanHandleAlerts]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "AlertAcknowledgeInput"

        note = S(max_length=lifecycle.MAX_NOTE, help_text="Required: who is on it, what is being done.")

    @extend_schema(
        operation_id="alerts_acknowledge",
        request=InputSerializer,
        responses=AlertDetailOutput,
        summary="Acknowledge an open alert (editor)",
    )
    def post(self, request: Request, alert_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = alert_selectors.alert_get(alert_id)
        lifecycle.alert_acknowledge(alert=alert, user=request.user, note=data.validated_data["note"])
        return _alert_detail(alert_id)


class AlertResolveApi(APIView):
    permission_classes = [CanHandleAlerts]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "AlertResolveInput"

        note = S(max_length=lifecycle.MAX_NOTE, required=False, allow_blank=True)

    @extend_schema(
        operation_id="alerts_resolve",
        request=InputSerializer,
        responses=AlertDetailOutput,
        summary="Resolve an open or acknowledged alert by hand (editor)",
    )
    def post(self, request: Request, alert_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = alert_selectors.alert_get(alert_id)
        lifecycle.alert_resolve(alert=alert, user=request.user, note=data.validated_data.get("note", ""))
        return _alert_detail(alert_id)


class ChannelOutput(serializers.Serializer):
    id = I()
    name = S()
    kind = S(help_text="webhook, email, slack, pagerduty or teams")
    url = S(help_text="webhook, slack, teams: where alerts are POSTed; pagerduty: the Events API v2 endpoint")
    secret = S(help_text="the HMAC-SHA256 key of the X-Signalbox-Signature header (webhooks)")
    routing_key = S(
        source="routing_key_hint",
        help_text='pagerduty: the routing key\'s last four characters ("…d1a6"); never shown in full',
    )
    emails = serializers.ListField(child=S())
    enabled = serializers.BooleanField()
    min_severity = S()
    policy = S(source="policy.slug", allow_null=True, default=None, help_text="null: every policy")
    consecutive_failures = I()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = S(help_text="why it is disabled (by hand, or after repeated failures)")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _channel(channel_id: int) -> NotificationChannel:
    channel = alert_selectors.channel_list().filter(pk=channel_id).first()
    if channel is None:
        raise NotFound(f"No notification channel {channel_id}.", {"channel": ["not found"]})
    return channel


def _policy_or_none(slug: str | None) -> Any:
    return routing_selectors.policy_get(slug) if slug else None


class ChannelListApi(APIView):
    permission_classes = [CanManageChannels]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "ChannelCreateInput"

        name = S(max_length=200)
        kind = serializers.ChoiceField(choices=NotificationChannel.Kind.values)
        url = S(
            required=False,
            allow_blank=True,
            max_length=2000,
            help_text="webhook: http(s) URL; slack, teams: the https webhook URL; "
            "pagerduty: the Events API v2 endpoint (empty: PagerDuty's)",
        )
        secret = S(required=False, allow_blank=True, max_length=200, help_text="webhook: empty makes a random one")
        emails = serializers.ListField(child=S(max_length=254), required=False, max_length=channels.MAX_EMAILS)
        routing_key = S(
            required=False,
            allow_blank=True,
            max_length=200,
            help_text="pagerduty: the 32-character integration key of an Events API v2 integration",
        )
        min_severity = serializers.ChoiceField(choices=Severity.values, default=Severity.TICKET)
        enabled = serializers.BooleanField(default=True)
        policy = S(required=False, allow_null=True, max_length=63, help_text="policy slug; null: every policy")

    @extend_schema(
        operation_id="channels_list",
        parameters=PAGE_PARAMETERS,
        responses=page_of(ChannelOutput),
        summary="Notification channels (publisher)",
    )
    def get(self, request: Request) -> Response:
        return paginate(request, self, alert_selectors.channel_list(), ChannelOutput)

    @extend_schema(
        operation_id="channels_create",
        request=InputSerializer,
        responses={201: ChannelOutput},
        summary="Create a webhook, email, Slack, PagerDuty or Teams channel (publisher)",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["policy"] = _policy_or_none(values.get("policy"))
        channel = channels.channel_create(user=request.user, **values)
        return Response(ChannelOutput(_channel(channel.pk)).data, status=201)


class ChannelDetailApi(APIView):
    permission_classes = [CanManageChannels]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "ChannelUpdateInput"

        name = S(max_length=200, required=False)
        url = S(required=False, allow_blank=True, max_length=2000)
        secret = S(required=False, allow_blank=True, max_length=200, help_text="empty makes a new random one")
        emails = serializers.ListField(child=S(max_length=254), required=False, max_length=channels.MAX_EMAILS)
        routing_key = S(required=False, allow_blank=True, max_length=200, help_text="pagerduty: a new routing key")
        min_severity = serializers.ChoiceField(choices=Severity.values, required=False)
        enabled = serializers.BooleanField(
            required=False, help_text="true re-enables a disabled channel and resets its failure count"
        )
        policy = S(required=False, allow_null=True, max_length=63)

    @extend_schema(operation_id="channels_read", responses=ChannelOutput, summary="One notification channel")
    def get(self, request: Request, channel_id: int) -> Response:
        return Response(ChannelOutput(_channel(channel_id)).data)

    @extend_schema(
        operation_id="channels_update",
        request=InputSerializer,
        responses=ChannelOutput,
        summary="Change a channel; enabled=true re-enables it (publisher)",
    )
    def patch(self, request: Request, channel_id: int) -> Response:
        channel = _channel(channel_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "policy" in values:
            values["policy"] = _policy_or_none(values["policy"])
        channels.channel_update(channel=channel, user=request.user, **values)
        return Response(ChannelOutput(_channel(channel_id)).data)

    @extend_schema(operation_id="channels_delete", responses={204: None}, summary="Delete a channel (publisher)")
    def delete(self, request: Request, channel_id: int) -> Response:
        channels.channel_delete(channel=_channel(channel_id), user=request.user)
        return Response(status=204)


class ChannelTestApi(APIView):
    permission_classes = [CanManageChannels]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChannelTestResult"

        ok = serializers.BooleanField()
        status = I(allow_null=True, help_text="the receiver's HTTP status (none for email)")
        error = S()

    @extend_schema(
        operation_id="channels_test",
        request=None,
        responses=OutputSerializer,
        summary="Send a test notification now and report how it went (publisher)",
    )
    def post(self, request: Request, channel_id: int) -> Response:
        result = channels.channel_test(channel=_channel(channel_id), user=request.user)
        return Response(self.OutputSerializer(result).data)
