"""The API's request parsers (the default for every DRF view)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deeper than any valid request (a document may nest 40 levels), shallow enough that nothing
# downstream (serializers, json.dumps, the database adapter) can hit the recursion limit.
MAX_BODY_DEPTH = 64


class JsonBodyParser(JSONParser):
    """JSON parser that answers 400 for a body nested too deeply, instead of a RecursionError."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_BODY_DEPTH} levels") from None
        stack = [(data, 0)]
        while stack:
            value, depth = stack.pop()
            if depth > MAX_BODY_DEPTH:
                raise ParseError(f"JSON parse error - nested more than {MAX_BODY_DEPTH} levels")
            if isinstance(value, dict):
                stack.extend((item, depth + 1) for item in value.values())
            elif isinstance(value, list):
                stack.extend((item, depth + 1) for item in value)
        return data
