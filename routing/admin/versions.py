"""A policy's pages beyond its own: one version, a version's diff against live, trying a request,
publish, roll back and discarding the draft; and the policy lookup and page context they share
with the policy page."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from controlplane import compute
from controlplane.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from routing import selectors, services
from routing.admin.base import PagesAdmin, error_lines, refusal_status, render_diff
from routing.admin.documents import schema_ordered
from routing.diff import document_diff
from routing.forms import CommentForm, PreviewForm, document_text
from routing.models import Policy, PolicyVersion
from routing.roles import PERM_EDIT_DRAFT, PERM_EDIT_POLICY, PERM_PUBLISH
from signalbox_client import engine


class PolicyVersionPages(PagesAdmin):
    """The version, preview, publish, rollback and discard pages of PolicyAdmin."""

    def _policy_or_404(self, request: HttpRequest, object_id: str) -> Policy:
        policy: Policy = self._object_or_404(request, object_id)
        return policy

    def _context(self, request: HttpRequest, policy: Policy | None, **extra: Any) -> dict[str, Any]:
        return self._page_context(
            request,
            policy=policy,
            original=policy,
            **self._permission_flags(request),
            policy_url=self._url("change", policy.pk) if policy else "",
            **extra,
        )

    @staticmethod
    def _permission_flags(request: HttpRequest) -> dict[str, bool]:
        return {
            "can_publish": request.user.has_perm(PERM_PUBLISH),
            "can_edit_draft": request.user.has_perm(PERM_EDIT_DRAFT),
            "can_edit_policy": request.user.has_perm(PERM_EDIT_POLICY),
        }

    # -- versions
    def _version(self, policy: Policy, number: int) -> PolicyVersion:
        try:
            return selectors.policy_version_get(policy, number)
        except NotFound as exc:
            raise Http404(exc.message) from exc

    def version_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        version = self._version(policy, number)
        context = self._context(
            request,
            policy,
            title=f"{policy.slug} v{number}",
            crumb=f"v{number}",
            version=version,
            document=document_text(schema_ordered(version.document)),
        )
        return TemplateResponse(request, "admin/routing/policy/version.html", context)

    def version_diff_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        version = self._version(policy, number)
        live = policy.live_version
        changes = document_diff(live.document if live else {}, version.document)
        context = self._context(
            request,
            policy,
            title=f"{policy.slug}: live → v{number}",
            crumb=f"diff v{number}",
            version=version,
            live=live,
            diff=render_diff(changes, empty=f"v{number} equals the live version."),
        )
        return TemplateResponse(request, "admin/routing/policy/version_diff.html", context)

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Try one request against the draft or the live version: the engine's decision and its reason."""
        policy = self._policy_or_404(request, object_id)
        has_draft = selectors.policy_draft(policy) is not None
        form = PreviewForm(
            request.GET if "task_type" in request.GET else None, initial={"version": "draft" if has_draft else "live"}
        )
        result, error = None, None
        if form.is_bound and form.is_valid():
            ref = form.cleaned_data["version"]
            try:
                version = selectors.policy_version_get(policy, ref)
                spend = form.cleaned_data.get("route_spend")
                state = None
                if spend is not None:
                    routes = (version.document.get("routes") or {}) if isinstance(version.document, dict) else {}
                    state = {"routes": {name: {"daily": spend} for name in routes}}
                with compute.bounded("preview", field="text"):
                    result = selectors.policy_preview(policy, ref, request=form.request_fields(), state=state)
            except DomainError as exc:
                error = exc.message
            except engine.PolicyError as exc:
                error = f"This version's document is invalid: {exc}"
        context = self._context(
            request,
            policy,
            title=f"{policy.slug}: try a request",
            crumb="try a request",
            form=form,
            result=result,
            error=error,
            reason=json.dumps(result["decision"]["reason"], indent=2, sort_keys=True) if result else "",
        )
        return TemplateResponse(request, "admin/routing/policy/preview.html", context)

    # -- publish, rollback, discard
    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        form = CommentForm(request.POST or None)
        errors: list[str] = []
        conflict = None
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                version = services.policy_publish(
                    policy=policy,
                    user=request.user,
                    comment=form.cleaned_data["comment"],
                    expected_revision=form.cleaned_data["expected_revision"],
                )
            except DomainError as exc:
                status, errors, conflict = self._refusal(exc, form)
            else:
                messages.success(request, f"Published {policy.slug} v{version.number}; it is live now.")
                return redirect(self._url("change", policy.pk) + "#versions")
            policy.refresh_from_db()
        elif request.method == "POST":
            # The comment's errors show on its field; the hidden revision's need a line of their own.
            errors = [f"{name}: {e}" for name, errs in form.errors.items() if name != "comment" for e in errs]
        draft = selectors.policy_draft(policy)
        live = policy.live_version
        if request.method != "POST" and draft is not None:
            form = CommentForm(initial={"expected_revision": draft.revision})
        stale = draft is not None and draft.base_number != (live.number if live else None)
        context = self._context(
            request,
            policy,
            title=f"Publish {policy.slug}",
            crumb="Publish",
            draft=draft,
            live=live,
            form=form,
            errors=errors,
            conflict=conflict,
            stale=stale,
            diff=render_diff(
                document_diff(live.document if live else {}, draft.document), empty="The draft equals the live version."
            )
            if draft
            else None,
            next_number=policy.last_number + 1,
        )
        return TemplateResponse(request, "admin/routing/policy/publish.html", context, status=status)

    def rollback_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        target = self._version(policy, number)
        form = CommentForm(request.POST or None)
        form.fields["comment"].widget.attrs["placeholder"] = "Why roll back? What went wrong?"
        errors: list[str] = []
        conflict = None
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                version = services.policy_rollback(
                    policy=policy, to_number=number, user=request.user, comment=form.cleaned_data["comment"]
                )
            except DomainError as exc:
                status, errors, conflict = self._refusal(exc, form)
            else:
                messages.success(request, f"Rolled back: v{version.number} (a copy of v{number}) is live now.")
                return redirect(self._url("change", policy.pk) + "#versions")
            policy.refresh_from_db()
        live = policy.live_version
        context = self._context(
            request,
            policy,
            title=f"Roll back {policy.slug} to v{number}",
            crumb=f"Roll back to v{number}",
            target=target,
            live=live,
            form=form,
            errors=errors,
            conflict=conflict,
            next_number=policy.last_number + 1,
            diff=render_diff(
                document_diff(live.document if live else {}, target.document),
                empty=f"v{number} equals the live version.",
            ),
        )
        return TemplateResponse(request, "admin/routing/policy/rollback.html", context, status=status)

    @staticmethod
    def _refusal(exc: DomainError, form: CommentForm) -> tuple[int, list[str], dict[str, Any] | None]:
        """Status, error lines and conflict details for a refused publish or rollback."""
        if isinstance(exc, InvalidInput) and "comment" in exc.errors:
            form.errors.pop("comment", None)
            form.add_error("comment", exc.errors["comment"])
            return 200, [exc.message], None
        if isinstance(exc, Conflict):
            changes = exc.extra.get("changes")
            return (
                409,
                [exc.message],
                {
                    "live_number": exc.extra.get("live_number"),
                    "diff": render_diff(changes) if changes is not None else None,
                },
            )
        status = exc.status_code if isinstance(exc, NotAllowed | NotFound) else 200
        return status, error_lines(exc) if isinstance(exc, InvalidInput) else [exc.message], None

    def discard_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        draft = selectors.policy_draft(policy)
        errors: list[str] = []
        status = 200
        if request.method == "POST":
            try:
                services.draft_discard(policy=policy, user=request.user)
            except DomainError as exc:
                errors = [exc.message]
                status = refusal_status(exc)
            else:
                messages.success(request, "Draft discarded.")
                return redirect(self._url("change", policy.pk))
        context = self._context(
            request,
            policy,
            title=f"Discard the draft of {policy.slug}",
            crumb="Discard draft",
            draft=draft,
            errors=errors,
        )
        return TemplateResponse(request, "admin/routing/policy/discard.html", context, status=status)
