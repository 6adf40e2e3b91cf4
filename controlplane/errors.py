"""The one domain error type services raise, and the renderer that turns every API error into
`{"message": ..., "errors": {field path: [reasons]}}` with the right status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class DomainError(Exception):
    """A request the domain refuses. `errors` maps a field path to its reasons."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "invalid"
    headers: ClassVar[Mapping[str, str]] = {}  # sent with the error response (e.g. Retry-After)

    def __init__(
        self,
        message: str,
        errors: Mapping[str, Sequence[str]] | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = {path: list(reasons) for path, reasons in (errors or {}).items()}
        self.extra = dict(extra or {})

    def as_body(self) -> dict[str, Any]:
        return {"message": self.message, "errors": self.errors, **self.extra}


class InvalidInput(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"


class NotAllowed(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class TooLarge(DomainError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


def json_error(
    status_code: int,
    message: str,
    errors: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    """A plain-Django error response in the API's error shape (for views outside DRF)."""
    response = JsonResponse(
        {"message": message, "errors": {k: list(v) for k, v in (errors or {}).items()}}, status=status_code
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"dotted.path": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            path = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                path = prefix
            for sub, messages in _flatten(value, path).items():
                out.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in detail):
            out.setdefault(prefix, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    for sub, messages in _flatten(item, f"{prefix}.{index}" if prefix else str(index)).items():
                        out.setdefault(sub, []).extend(messages)
    else:
        out.setdefault(prefix, []).append(str(detail))
    return out


_GENERIC = {
    status.HTTP_400_BAD_REQUEST: "The request is invalid.",
    status.HTTP_401_UNAUTHORIZED: "Authentication is required.",
    status.HTTP_403_FORBIDDEN: "You do not have permission to do this.",
    status.HTTP_404_NOT_FOUND: "Not found.",
    status.HTTP_405_METHOD_NOT_ALLOWED: "Method not allowed.",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "The request body is too large.",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "Unsupported media type.",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests.",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error in one shape."""
    if isinstance(exc, DomainError):
        return Response(exc.as_body(), status=exc.status_code, headers=dict(exc.headers))
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = {path or "(root)": msgs for path, msgs in _flatten(detail).items()}
        message = "; ".join(f"{path}: {msgs[0]}" for path, msgs in list(errors.items())[:3])
        body = {"message": message or _GENERIC[400], "errors": errors}
    elif isinstance(exc, drf_exceptions.UnsupportedMediaType):
        body = {
            "message": f"{detail} Send application/json.",
            "errors": {"content_type": ["expected application/json"]},
        }
    elif isinstance(exc, drf_exceptions.ParseError):
        body = {"message": f"The request body is not valid: {detail}", "errors": {"body": [str(detail)]}}
    else:
        message = str(detail) if detail else _GENERIC.get(response.status_code, "Error.")
        body = {"message": message, "errors": {}}
    response.data = body
    return response


def page_not_found(request: Any, exception: Exception | None = None) -> Any:
    """handler404: the API's error shape under /api/ (a path that matches no route, such as a
    non-numeric id), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return json_error(404, "Not found.", {"path": ["no such endpoint or object"]})
    from django.views import defaults

    return defaults.page_not_found(request, exception)
