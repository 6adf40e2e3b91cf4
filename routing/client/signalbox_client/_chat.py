"""What the integrations read from the OpenAI chat-completions shapes (the OpenAI SDK's objects
and LiteLLM's, which copy them): token usage of a completion or a stream chunk, and the
``include_usage`` stream option. Imports neither SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._types import CallResult


def completion_result(completion: Any) -> CallResult:
    """A chat completion as ``run()`` takes it: the completion and its token usage."""
    tokens = chunk_usage(completion)
    return CallResult(completion, tokens_in=tokens[0] if tokens else 0, tokens_out=tokens[1] if tokens else 0)


def chunk_usage(chunk: Any) -> tuple[int, int] | None:
    """(prompt tokens, completion tokens) of a completion or of the stream chunk that carries the
    usage (the last one, with ``stream_options={"include_usage": True}``), else None."""
    usage = getattr(chunk, "usage", None)
    if usage is None:
        return None
    tokens_in, tokens_out = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    return (tokens_in if isinstance(tokens_in, int) else 0, tokens_out if isinstance(tokens_out, int) else 0)


def usage_only(chunk: Any) -> bool:
    """True for the chunk ``include_usage`` adds at the end of a stream: no choices, only usage."""
    return not getattr(chunk, "choices", None) and getattr(chunk, "usage", None) is not None


def stream_arguments(create: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``create`` with the usage asked for at the end of the stream, and whether it was added here
    (then the usage-only chunk the caller did not ask for is read but not passed on)."""
    options = create.get("stream_options")
    if options is None or (isinstance(options, Mapping) and "include_usage" not in options):
        return {**create, "stream_options": {**(options or {}), "include_usage": True}}, True
    return create, False
