"""The metrics admin: alerts (acknowledge and resolve with a note), notification channels (disabled
ones shown as such, re-enable and test actions) and deliveries (read-only). Every write calls
metrics.alerts, which checks the user's permission itself."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from controlplane.errors import DomainError
from metrics.alerts import access, channels, lifecycle
from metrics.models import Alert, AlertEvent, Delivery, NotificationChannel
from routing.admin import badge

_SEVERITY_KIND = {"page": "revoked", "ticket": "draft", "info": "info"}
_STATUS_KIND = {"open": "revoked", "acknowledged": "draft", "resolved": "live"}


class _RoleAdmin(admin.ModelAdmin):
    """Access by the role groups' routing permissions (see metrics.alerts), not model permissions."""

    view_perm = access.PERM_ALERTS_VIEW

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(self.view_perm)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- alerts --------------------------------------------------------------------------------------


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=lifecycle.MAX_NOTE, required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    fields = ("at", "kind", "actor_label", "severity", "note", "summary")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "history"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(access.PERM_ALERTS_VIEW)


@admin.register(Alert)
class AlertAdmin(_RoleAdmin):
    list_display = [
        "id",
        "policy",
        "route_column",
        "detector",
        "severity_column",
        "status_column",
        "summary",
        "opened_at",
        "last_evaluated_at",
    ]
    list_display_links = ["id", "detector"]
    list_filter = ["status", "severity", "detector", "policy"]
    search_fields = ["route", "summary", "detector"]
    list_select_related = ["policy"]
    date_hierarchy = "opened_at"
    fields = (
        "policy",
        "route",
        "detector",
        "severity",
        "status",
        "summary",
        "evidence",
        "opened_at",
        "last_evaluated_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
    )
    readonly_fields = fields
    inlines = [AlertEventInline]
    actions = ["acknowledge_selected", "resolve_selected"]

    def has_handle_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(access.PERM_ALERTS_HANDLE)

    @admin.display(description="Route", ordering="route")
    def route_column(self, obj: Alert) -> str:
        return obj.route or "(whole policy)"

    @admin.display(description="Severity", ordering="severity")
    def severity_column(self, obj: Alert) -> SafeString:
        return badge(obj.severity, _SEVERITY_KIND[obj.severity])

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj: Alert) -> SafeString:
        return badge(obj.status, _STATUS_KIND[obj.status])

    def _note_action(
        self, request: HttpRequest, queryset: QuerySet[Alert], *, action: str, verb: str, required: bool
    ) -> HttpResponse | None:
        selected = list(queryset.select_related("policy"))
        form = NoteForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid() and (form.cleaned_data["note"].strip() or not required):
            done = 0
            for alert in selected:
                try:
                    if action == "acknowledge_selected":
                        lifecycle.alert_acknowledge(alert=alert, user=request.user, note=form.cleaned_data["note"])
                    else:
                        lifecycle.alert_resolve(alert=alert, user=request.user, note=form.cleaned_data["note"])
                    done += 1
                except DomainError as exc:
                    self.message_user(request, f"Alert {alert.pk}: {exc.message}", messages.WARNING)
            if done:
                self.message_user(
                    request, f"{verb.capitalize()} {done} alert{'s' if done != 1 else ''}.", messages.SUCCESS
                )
            return None
        if form.is_bound and required and not form.errors:
            form.add_error("note", "A note is required.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": f"{verb.capitalize()} alerts",
            "alerts": selected,
            "form": form,
            "action": action,
            "verb": verb,
            "required": required,
            "queryset_ids": [a.pk for a in selected],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/metrics/alert/note_action.html", context)

    @admin.action(description="Acknowledge selected alerts…", permissions=["handle"])
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> HttpResponse | None:
        return self._note_action(request, queryset, action="acknowledge_selected", verb="acknowledged", required=True)

    @admin.action(description="Resolve selected alerts…", permissions=["handle"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> HttpResponse | None:
        return self._note_action(request, queryset, action="resolve_selected", verb="resolved", required=False)


# --- channels ------------------------------------------------------------------------------------


class ChannelForm(forms.ModelForm):
    """The channel's fields, checked by the same rules as the service (the errors land on the fields).
    The routing key is never put back into the page: left empty on a change, it stays as it is."""

    url = forms.URLField(
        max_length=2000,
        required=False,
        assume_scheme="https",
        help_text="Webhook: where alerts are POSTed (http or https). Slack, Teams: the incoming webhook's "
        "https URL. PagerDuty: the Events API v2 endpoint (empty: PagerDuty's; the EU one is "
        "https://events.eu.pagerduty.com/v2/enqueue).",
    )
    emails_text = forms.CharField(
        label="Email addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Email channels: one address per line.",
    )
    routing_key = forms.CharField(
        label="Routing key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="PagerDuty: the 32-character integration key of the service's Events API v2 integration.",
    )

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "url", "secret", "min_severity", "policy", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["kind"].disabled = True
            self.fields["emails_text"].initial = "\n".join(self.instance.emails or [])
            if self.instance.routing_key:
                self.fields[
                    "routing_key"
                ].help_text += f" Now {self.instance.routing_key_hint}; leave empty to keep it."
        self.fields["secret"].help_text += " Empty: a random one is made."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["emails"] = [line.strip() for line in (data.get("emails_text") or "").splitlines() if line.strip()]
        if not data.get("routing_key") and self.instance.pk:
            data["routing_key"] = self.instance.routing_key  # empty on a change: the key stays
        try:
            channels.channel_fields_check(
                kind=data.get("kind") or self.instance.kind,
                name=data.get("name"),
                url=data.get("url"),
                secret=data.get("secret"),
                emails=data["emails"],
                routing_key=data.get("routing_key"),
                min_severity=data.get("min_severity"),
            )
        except DomainError as exc:
            for field, reasons in exc.errors.items():
                name = "emails_text" if field.startswith("emails") else field
                self.add_error(name if name in self.fields else None, reasons)
        return data


class ChannelStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("enabled", "Enabled"), ("disabled", "Disabled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[NotificationChannel]) -> QuerySet[NotificationChannel]:
        if self.value() in ("enabled", "disabled"):
            return queryset.filter(enabled=self.value() == "enabled")
        return queryset


@admin.register(NotificationChannel)
class NotificationChannelAdmin(_RoleAdmin):
    view_perm = access.PERM_CHANNELS_MANAGE
    form = ChannelForm
    list_display = ["name", "kind", "target_column", "min_severity", "policy", "status_column", "consecutive_failures"]
    list_filter = [ChannelStatusFilter, "kind", "min_severity"]
    list_select_related = ["policy"]
    search_fields = ["name", "url"]
    readonly_fields = [
        "status_column",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
        "created_at",
        "updated_at",
    ]
    actions = ["enable_selected", "test_selected"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["name", "kind", "url", "secret", "routing_key", "emails_text", "min_severity", "policy", "enabled"]
        return fields + (self.readonly_fields if obj else [])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    @admin.display(description="Sends to")
    def target_column(self, obj: NotificationChannel) -> str:
        if obj.kind == NotificationChannel.Kind.EMAIL:
            return ", ".join(obj.emails)
        if obj.kind == NotificationChannel.Kind.PAGERDUTY:
            return f"{obj.url} (routing key {obj.routing_key_hint})"
        return obj.url

    @admin.display(description="Status", ordering="enabled")
    def status_column(self, obj: NotificationChannel) -> SafeString:
        if obj.enabled:
            return badge("enabled", "live")
        return format_html(
            '{} <span class="sb-muted">{}</span>', badge("disabled", "revoked"), obj.disabled_reason or ""
        )

    def save_model(self, request: HttpRequest, obj: NotificationChannel, form: Any, change: bool) -> None:
        names = ("name", "url", "secret", "routing_key", "min_severity", "policy", "enabled")
        values = {k: form.cleaned_data.get(k) for k in names}
        values["emails"] = form.cleaned_data["emails"]
        if change:
            saved = channels.channel_update(channel=obj, user=request.user, **values)
        else:
            saved = channels.channel_create(user=request.user, kind=form.cleaned_data["kind"], **values)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: NotificationChannel) -> None:
        channels.channel_delete(channel=obj, user=request.user)

    @admin.action(description="Enable selected channels (resets the failure count)", permissions=["manage"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[NotificationChannel]) -> None:
        for channel in queryset:
            channels.channel_update(channel=channel, user=request.user, enabled=True)
        self.message_user(request, f"Enabled {queryset.count()} channel(s).", messages.SUCCESS)

    @admin.action(description="Send a test notification", permissions=["manage"])
    def test_selected(self, request: HttpRequest, queryset: QuerySet[NotificationChannel]) -> None:
        for channel in queryset:
            result = channels.channel_test(channel=channel, user=request.user)
            if result.ok:
                self.message_user(request, f"{channel.name}: test sent.", messages.SUCCESS)
            else:
                self.message_user(request, f"{channel.name}: test failed: {result.error}", messages.ERROR)


# --- deliveries ----------------------------------------------------------------------------------


@admin.register(Delivery)
class DeliveryAdmin(_RoleAdmin):
    view_perm = access.PERM_CHANNELS_MANAGE
    list_display = [
        "id",
        "created_at",
        "channel",
        "event_column",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "sent_at",
    ]
    list_filter = ["status", "channel"]
    list_select_related = ["channel", "event__alert"]
    fields = (
        "channel",
        "event",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "next_attempt_at",
        "created_at",
        "sent_at",
    )
    readonly_fields = fields

    @admin.display(description="Event")
    def event_column(self, obj: Delivery) -> str:
        return f"alert {obj.event.alert_id} {obj.event.kind} ({obj.event.alert.detector})"
