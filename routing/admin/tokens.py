"""The API token admin: each user's own management API tokens (a superuser sees everyone's):
create one (its key shown once), list them with role, scope, expiry and last use, revoke one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
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
from routing.forms import ApiTokenCreateForm, RevokeForm
from routing.models import ApiToken
from routing.roles import role_of

_KEY_SESSION_KEY = "routing.api_token_key.{}"  # a session key name, not a secret


@admin.register(ApiToken)
class ApiTokenAdmin(PagesAdmin):
    list_display = [
        "name",
        "prefix_column",
        "user",
        "role",
        "policies_column",
        "created_at",
        "expires_at",
        "last_used_at",
        "status_column",
    ]
    search_fields = ["name", "prefix"]
    fields = readonly_fields = (
        "name",
        "prefix_column",
        "user",
        "role",
        "policies_column",
        "created_at",
        "expires_at",
        "last_used_at",
        "status_column",
        "revoked_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        return selectors.api_token_list(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Anyone with a role has tokens of their own; the queryset shows only those.
        return role_of(request.user) is not None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token's hash, role and scope never change; revoke it and make another

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked tokens stay for the audit trail

    @admin.display(description="Key")
    def prefix_column(self, obj: ApiToken) -> SafeString:
        return format_html('<code class="sb-code">{}{}_…</code>', services.API_TOKEN_PREFIX, obj.prefix)

    @admin.display(description="Policies")
    def policies_column(self, obj: ApiToken) -> SafeString:
        chips = format_html_join(" ", '<span class="sb-chip">{}</span>', ((p.slug,) for p in obj.policies.all()))
        return chips or SafeString("every policy")

    @admin.display(description="Status", ordering="revoked_at")
    def status_column(self, obj: ApiToken) -> SafeString:
        if obj.revoked_at:
            return badge(f"revoked {timezone.localtime(obj.revoked_at):%Y-%m-%d}", "revoked")
        if obj.expires_at and obj.expires_at <= timezone.now():
            return badge("expired", "revoked")
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
        if not self.has_add_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = ApiTokenCreateForm(request.POST or None, initial={"role": role_of(request.user)})
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                token, key = services.api_token_create(user=request.user, **form.cleaned_data)
            except DomainError as exc:
                status = form_refusal(form, exc)
            else:
                # Kept in the session only until the result page shows it, once.
                request.session[_KEY_SESSION_KEY.format(token.pk)] = key
                return redirect(self._url("created", token.pk))
        context = self._page_context(request, title="Create an API token", form=form)
        return TemplateResponse(request, "admin/routing/apitoken/add.html", context, status=status)

    def created_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        token = self._object_or_404(request, object_id)
        key = request.session.pop(_KEY_SESSION_KEY.format(token.pk), None)
        context = self._page_context(
            request,
            title="API token created" if key else "API token",
            token=token,
            secret=key,
            token_url=self._url("change", token.pk),
        )
        response = TemplateResponse(request, "admin/routing/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "can_revoke": True, "revoke_url": self._url("revoke", object_id)}
        return super().change_view(request, object_id, form_url, extra)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        token = self._object_or_404(request, object_id)
        form = RevokeForm(request.POST or None)
        errors: list[str] = []
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                services.api_token_revoke(token=token, user=request.user, comment=form.cleaned_data["comment"])
            except DomainError as exc:
                errors = [exc.message]
                status = refusal_status(exc)
            else:
                messages.success(request, f"Token “{token}” revoked; its next request is refused.")
                return redirect(self._url("change", token.pk))
        context = self._page_context(request, title=f"Revoke “{token}”", token=token, form=form, errors=errors)
        return TemplateResponse(request, "admin/routing/apitoken/revoke.html", context, status=status)
