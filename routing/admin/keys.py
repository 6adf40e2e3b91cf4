"""The SDK key admin: creating a key (its secret shown once), listing and revoking keys."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from controlplane.errors import DomainError
from routing import selectors, services
from routing.admin.base import PagesAdmin, badge, form_refusal, refusal_status
from routing.forms import RevokeForm, SdkKeyCreateForm
from routing.models import SdkKey
from routing.roles import PERM_MANAGE_KEYS

_SECRET_SESSION_KEY = "routing.sdk_key_secret.{}"  # noqa: S105 - a session key name, not a secret


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[SdkKey]) -> QuerySet[SdkKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(SdkKey)
class SdkKeyAdmin(PagesAdmin):
    list_display = [
        "name",
        "prefix_column",
        "policies_column",
        "created_at",
        "created_by",
        "last_used_at",
        "status_column",
    ]
    list_filter = [KeyStatusFilter, "policies"]
    search_fields = ["name", "prefix"]
    fields = readonly_fields = (
        "name",
        "prefix_column",
        "policies_column",
        "created_by",
        "created_at",
        "last_used_at",
        "status_column",
        "revoked_at",
    )
    actions = ["revoke_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SdkKey]:
        return selectors.sdk_key_list()

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_MANAGE_KEYS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_manage_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a key's hash, prefix and scope never change; revoke and create a new one

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked keys stay for the audit trail

    @admin.display(description="Key")
    def prefix_column(self, obj: SdkKey) -> SafeString:
        return format_html('<code class="sb-code">{}{}_…</code>', services.SDK_KEY_PREFIX, obj.prefix)

    @admin.display(description="Policies")
    def policies_column(self, obj: SdkKey) -> SafeString:
        return format_html_join(" ", '<span class="sb-chip">{}</span>', ((p.slug,) for p in obj.policies.all()))

    @admin.display(description="Status", ordering="revoked_at")
    def status_column(self, obj: SdkKey) -> SafeString:
        if obj.revoked_at:
            return badge(f"revoked {timezone.localtime(obj.revoked_at):%Y-%m-%d}", "revoked")
        return badge("active", "live")

    def get_urls(self) -> list[Any]:
        return [
            *self._page_urls(
                ("<path:object_id>/created/", self.created_view, "created"),
                ("<path:object_id>/revoke/", self.revoke_view, "revoke"),
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        form = SdkKeyCreateForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                key, secret = services.sdk_key_create(user=request.user, **form.cleaned_data)
            except DomainError as exc:
                status = form_refusal(form, exc)
            else:
                # Kept in the session only until the result page shows it, once.
                request.session[_SECRET_SESSION_KEY.format(key.pk)] = secret
                return redirect(self._url("created", key.pk))
        elif request.method != "POST" and not self.has_add_permission(request):
            raise PermissionDenied
        context = self._page_context(request, title="Create an SDK key", form=form)
        return TemplateResponse(request, "admin/routing/sdkkey/add.html", context, status=status)

    def created_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._object_or_404(request, object_id)
        secret = request.session.pop(_SECRET_SESSION_KEY.format(key.pk), None)
        context = self._page_context(
            request,
            title="SDK key created" if secret else "SDK key",
            key=key,
            secret=secret,
            key_url=self._url("change", key.pk),
        )
        response = TemplateResponse(request, "admin/routing/sdkkey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {
            **(extra_context or {}),
            "can_manage_keys": self.has_manage_permission(request),
            "revoke_url": self._url("revoke", object_id),
        }
        return super().change_view(request, object_id, form_url, extra)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._object_or_404(request, object_id)
        form = RevokeForm(request.POST or None)
        errors: list[str] = []
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                services.sdk_key_revoke(key=key, user=request.user, comment=form.cleaned_data["comment"])
            except DomainError as exc:
                errors = [exc.message]
                status = refusal_status(exc)
            else:
                messages.success(request, f"Key “{key.name}” revoked; clients using it are refused within a minute.")
                return redirect(self._url("change", key.pk))
        context = self._page_context(
            request, title=f"Revoke “{key.name}”", keys=[key], form=form, errors=errors, single=True
        )
        return TemplateResponse(request, "admin/routing/sdkkey/revoke.html", context, status=status)

    @admin.action(description="Revoke selected keys", permissions=["manage"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[SdkKey]) -> HttpResponse | None:
        keys = list(queryset)
        form = RevokeForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            context = self._page_context(
                request,
                title="Revoke SDK keys",
                keys=keys,
                form=form,
                errors=[],
                single=False,
                queryset_ids=[k.pk for k in keys],
                action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            )
            return TemplateResponse(request, "admin/routing/sdkkey/revoke.html", context)
        done = 0
        for key in keys:
            try:
                services.sdk_key_revoke(key=key, user=request.user, comment=form.cleaned_data["comment"])
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{key.name}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"Revoked {done} key{'s' if done != 1 else ''}.", messages.SUCCESS)
        return None
