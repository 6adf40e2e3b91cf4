"""The `regex` operator's pattern engine: Google RE2 (linear-time matching, no backtracking).

A pattern runs in time linear in the text it scans whatever its shape, so an author's `^(a+)+$`
costs what a plain pattern costs. RE2 refuses what it cannot run in linear time (backreferences,
lookahead and lookbehind, possessive and atomic groups); validation reports those with the path
of the condition. The server validates and previews with this same code.
"""

from __future__ import annotations

from collections.abc import Callable

import re2

# Never log parse errors to stderr (validation reports them); no capture groups: only "is there a
# match" matters, and RE2 then skips computing submatches. max_mem bounds the compiled program.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.never_capture = True
_OPTIONS.max_mem = 8 << 20

_BACKREFERENCES = tuple(f"invalid escape sequence: \\{d}" for d in "123456789")
_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")


def compile_search(pattern: str) -> Callable[[str], bool]:
    """Return a function telling whether `pattern` matches anywhere in a text; raise re2.error."""
    search = re2.compile(pattern, _OPTIONS).search

    def matches(text: str) -> bool:
        try:
            return search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800"): match its raw bytes
            return search(text.encode("utf-8", "surrogatepass")) is not None

    return matches


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 cannot run `pattern` (a message for the author), or None when it compiles."""
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        return _explain(exc, pattern)
    except UnicodeEncodeError:
        return "invalid regular expression: the pattern holds a lone surrogate"
    except (ValueError, TypeError, MemoryError) as exc:
        return f"invalid regular expression: {type(exc).__name__}"
    return None


def _explain(exc: BaseException, pattern: str) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if text.startswith(_BACKREFERENCES) or (text.startswith("invalid perl operator: (?P") and "(?P=" in pattern):
        return "invalid regular expression: backreferences are not supported (patterns use RE2 syntax)"
    if text.startswith("invalid perl operator: ") and text.removeprefix("invalid perl operator: ").startswith(
        _LOOKAROUND
    ):
        return "invalid regular expression: lookahead and lookbehind are not supported (patterns use RE2 syntax)"
    if len(text) > 200:
        text = text[:197] + "..."
    return f"invalid regular expression: {text}"
