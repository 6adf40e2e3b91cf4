"""The policy admin: the policy list, adding a policy, and the policy page with its forms (name and
description, the JSON draft editor, per-route thresholds, rebasing a stale draft)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from controlplane.csp import allow_json_editor
from controlplane.errors import Conflict, DomainError, NotFound
from routing import selectors, services
from routing.admin.base import badge, error_lines, form_refusal, refusal_status, render_diff
from routing.admin.documents import editor_schema, schema_ordered
from routing.admin.versions import PolicyVersionPages
from routing.diff import document_diff
from routing.forms import STARTER_DOCUMENT, DraftForm, PolicyAddForm, PolicyDetailsForm, ThresholdsForm, document_text
from routing.models import Policy
from routing.roles import PERM_EDIT_DRAFT


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


class PolicyChangeList(ChangeList):
    """Attaches each listed policy's newest audit entry, fetched in one query for the page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        last = selectors.policy_last_change([p.pk for p in self.result_list])
        for policy in self.result_list:
            policy.last_change = last.get(policy.pk)


@admin.register(Policy)
class PolicyAdmin(PolicyVersionPages):
    list_display = ["slug", "name", "live_column", "draft_column", "last_change_column", "last_author_column"]
    list_display_links = ["slug", "name"]
    search_fields = ["slug", "name"]
    list_per_page = 50

    # -- permissions: deleting a policy would break every client that fetches it
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        return selectors.policy_list_with_draft_revision()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PolicyChangeList

    # -- list columns
    @admin.display(description="Live", ordering="live_version__number")
    def live_column(self, obj: Policy) -> SafeString:
        if obj.live_version_id is None:
            return badge("nothing published", "none")
        return badge(f"v{obj.live_version.number}", "live")  # type: ignore[union-attr]  # live_version_id is set

    @admin.display(description="Draft")
    def draft_column(self, obj: Policy) -> SafeString:
        revision = getattr(obj, "draft_revision", None)
        if revision is None:
            return badge("no", "none")
        return badge(f"yes · rev {revision}", "draft")

    @admin.display(description="Last change")
    def last_change_column(self, obj: Policy) -> SafeString | str:
        entry = getattr(obj, "last_change", None)
        if entry is None:
            return "—"
        when = timezone.localtime(entry.created_at)
        return format_html(
            '<span title="{}">{}</span> <span class="sb-muted">· {}</span>',
            when.isoformat(timespec="seconds"),
            when.strftime("%Y-%m-%d %H:%M"),
            entry.get_action_display(),
        )

    @admin.display(description="By")
    def last_author_column(self, obj: Policy) -> str:
        entry = getattr(obj, "last_change", None)
        return entry.actor_label if entry else "—"

    # -- URLs
    def get_urls(self) -> list[Any]:
        return [
            *self._page_urls(
                ("<path:object_id>/publish/", self.publish_view, "publish"),
                ("<path:object_id>/rollback/<int:number>/", self.rollback_view, "rollback"),
                ("<path:object_id>/versions/<int:number>/", self.version_view, "version"),
                ("<path:object_id>/versions/<int:number>/diff/", self.version_diff_view, "version_diff"),
                ("<path:object_id>/preview/", self.preview_view, "preview"),
                ("<path:object_id>/draft/discard/", self.discard_view, "discard"),
            ),
            *super().get_urls(),
        ]

    # -- add
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PolicyAddForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                policy = services.policy_create(user=request.user, document=None, **form.cleaned_data)
            except DomainError as exc:
                status = form_refusal(form, exc)
            else:
                messages.success(request, f"Policy “{policy.slug}” created. Write its first draft below.")
                return redirect(self._url("change", policy.pk))
        context = self._context(request, None, title="Add policy", form=form)
        return TemplateResponse(request, "admin/routing/policy/add.html", context, status=status)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        url = reverse("admin:routing_auditentry_changelist", current_app=self.admin_site.name)
        return redirect(f"{url}?policy__id__exact={policy.pk}")

    # -- the policy page
    @allow_json_editor
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        if request.method != "POST":
            return self._render_page(request, policy)
        action = request.POST.get("_action")
        handler = {
            "details": self._post_details,
            "draft": self._post_draft,
            "thresholds": self._post_thresholds,
            "rebase": self._post_rebase,
        }.get(action or "")
        if handler is None:
            messages.error(request, "Unknown action.")
            return redirect(self._url("change", policy.pk))
        return handler(request, policy)

    def _render_page(
        self,
        request: HttpRequest,
        policy: Policy,
        *,
        status: int = 200,
        details_form: PolicyDetailsForm | None = None,
        draft_form: DraftForm | None = None,
        draft_errors: list[str] | None = None,
        draft_conflict: dict[str, Any] | None = None,
        thresholds_form: ThresholdsForm | None = None,
        thresholds_notice: str = "",
    ) -> HttpResponse:
        draft = selectors.policy_draft(policy)
        live = policy.live_version
        live_doc = live.document if live else None
        current_doc = draft.document if draft else live_doc
        stale = None
        if draft is not None and live is not None and draft.base_number != live.number:
            try:
                base_doc = selectors.policy_version_get(policy, draft.base_number).document if draft.base_number else {}
            except NotFound:
                base_doc = {}
            stale = {
                "base": draft.base_number or 0,
                "live": live.number,
                "diff": render_diff(document_diff(base_doc or {}, live_doc or {})),
            }
        if details_form is None:
            details_form = PolicyDetailsForm(initial={"name": policy.name, "description": policy.description})
        if draft_form is None:
            draft_form = DraftForm(
                initial={
                    "document": document_text(
                        schema_ordered(current_doc if current_doc is not None else STARTER_DOCUMENT)
                    ),
                    "expected_revision": draft.revision if draft else 0,
                }
            )
        if thresholds_form is None:
            thresholds_form = ThresholdsForm(
                document=current_doc, initial={"expected_revision": draft.revision if draft else 0}
            )
        if not request.user.has_perm(PERM_EDIT_DRAFT):
            for field in thresholds_form.fields.values():
                field.disabled = True
        versions = list(selectors.policy_versions(policy).defer("document", "models_snapshot"))
        audit = list(selectors.audit_list(policy=policy)[:8])
        context = self._context(
            request,
            policy,
            title=f"{policy.name}",
            subtitle=policy.slug,
            draft=draft,
            live=live,
            stale=stale,
            details_form=details_form,
            draft_form=draft_form,
            draft_errors=draft_errors or [],
            draft_conflict=draft_conflict,
            draft_vs_live=render_diff(
                document_diff(live_doc or {}, draft.document), empty="The draft equals the live version."
            )
            if draft
            else None,
            thresholds_form=thresholds_form,
            thresholds_notice=thresholds_notice,
            editor_schema=editor_schema(),
            versions=versions,
            audit=audit,
            audit_url=reverse("admin:routing_auditentry_changelist", current_app=self.admin_site.name)
            + f"?policy__id__exact={policy.pk}",
            editor_readonly=not request.user.has_perm(PERM_EDIT_DRAFT),
        )
        return TemplateResponse(request, "admin/routing/policy/policy_page.html", context, status=status)

    def _post_details(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        form = PolicyDetailsForm(request.POST)
        if form.is_valid():
            try:
                services.policy_update(policy=policy, user=request.user, **form.cleaned_data)
            except DomainError as exc:
                return self._render_page(request, policy, details_form=form, status=form_refusal(form, exc))
            messages.success(request, "Name and description saved.")
            return redirect(self._url("change", policy.pk))
        return self._render_page(request, policy, details_form=form)

    def _post_draft(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        form = DraftForm(request.POST)
        if not form.is_valid():
            lines = [f"{'document' if f == '__all__' else f}: {e}" for f, errs in form.errors.items() for e in errs]
            return self._render_page(request, policy, draft_form=form, draft_errors=lines)
        document = form.cleaned_data["document"]
        try:
            draft = services.draft_save(
                policy=policy, document=document, user=request.user, expected_revision=form.revision_to_expect()
            )
        except Conflict as exc:
            saved = selectors.policy_draft(policy)
            conflict = {
                "message": exc.message,
                "saved_revision": saved.revision if saved else None,
                "saved_author": saved.author if saved else None,
                "saved_at": saved.updated_at if saved else None,
                "diff": render_diff(document_diff(saved.document, document), empty="Your text equals the saved draft.")
                if saved
                else None,
            }
            return self._render_page(request, policy, draft_form=form, draft_conflict=conflict, status=409)
        except DomainError as exc:
            return self._render_page(
                request,
                policy,
                draft_form=form,
                draft_errors=error_lines(exc),
                status=refusal_status(exc),
            )
        messages.success(request, f"Draft saved (revision {draft.revision}).")
        return redirect(self._url("change", policy.pk) + "#draft")

    def _post_thresholds(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        draft = selectors.policy_draft(policy)
        live_doc = policy.live_version.document if policy.live_version else None
        current_doc = draft.document if draft else live_doc
        form = ThresholdsForm(request.POST, document=current_doc)
        if not form.is_valid():
            return self._render_page(request, policy, thresholds_form=form)
        document, changed = form.patched()
        if not changed:
            messages.info(request, "No threshold changed.")
            return redirect(self._url("change", policy.pk) + "#thresholds")
        try:
            saved = services.draft_save(
                policy=policy,
                document=document,
                user=request.user,
                expected_revision=form.cleaned_data.get("expected_revision") or 0,
            )
        except Conflict as exc:
            data = request.POST.copy()
            data["expected_revision"] = str(draft.revision if draft else 0)
            form = ThresholdsForm(data, document=current_doc)
            form.is_valid()
            notice = (
                f"{exc.message} Your values are kept below and now apply to the current draft "
                f"(revision {draft.revision if draft else 0}); check them and save again."
            )
            return self._render_page(request, policy, thresholds_form=form, thresholds_notice=notice, status=409)
        except DomainError as exc:
            for doc_path, reasons in exc.errors.items():
                field = next(
                    (name for p, name in form.field_by_path.items() if doc_path == p or doc_path.startswith(p + ".")),
                    None,
                )
                if field is None:
                    # An error on a parent object (e.g. a budget without limits) belongs to the
                    # field that created it.
                    field = next(
                        (
                            name
                            for p, name in form.field_by_path.items()
                            if p.startswith(doc_path + ".") and name in changed
                        ),
                        None,
                    )
                form.add_error(field, [f"{doc_path}: {r}" for r in reasons])
            if not exc.errors:
                form.add_error(None, exc.message)
            return self._render_page(request, policy, thresholds_form=form, status=refusal_status(exc))
        messages.success(
            request,
            f"Thresholds saved to the draft (revision {saved.revision}): "
            f"{len(changed)} value{'s' if len(changed) != 1 else ''} changed. "
            "Publish the draft to make them live.",
        )
        return redirect(self._url("change", policy.pk) + "#thresholds")

    def _post_rebase(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        fallback = self._url("change", policy.pk)
        draft = selectors.policy_draft(policy)
        if draft is None:
            messages.error(request, "There is no draft to rebase.")
            return redirect(fallback)
        try:
            expected = int(request.POST.get("expected_revision") or draft.revision)
            services.draft_save(
                policy=policy, document=draft.document, user=request.user, expected_revision=expected, rebase=True
            )
        except (DomainError, ValueError) as exc:
            messages.error(request, exc.message if isinstance(exc, DomainError) else "Bad revision.")
        else:
            live = policy.live_version
            messages.success(
                request, f"The draft is now based on the live version{f' v{live.number}' if live else ''}."
            )
        return redirect(_safe_next(request, fallback))
