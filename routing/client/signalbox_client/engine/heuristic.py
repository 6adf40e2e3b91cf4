"""The built-in difficulty heuristic: a cheap, deterministic score in [0, 1]."""

from __future__ import annotations

import math
import string

from .types import Request

# Words (after lower-casing and turning ASCII punctuation other than '-' into spaces) that signal
# analytical work. Each distinct word counts once; the phrase "step by step" counts as one more.
ANALYSIS_WORDS: frozenset[str] = frozenset(
    """
    analyze analyse analysis analyzing analysing compare comparison contrast prove proof
    derive derivation why explain evaluate justify tradeoff tradeoffs trade-off trade-offs
    critique optimize optimise debug calculate reason reasoning
    """.split()  # noqa: SIM905 - a word list reads better as text
)
ANALYSIS_PHRASES: tuple[str, ...] = ("step by step",)
LENGTH_SATURATION_TOKENS = 8000
KEYWORD_SATURATION = 3
QUESTION_SATURATION = 3
W_LENGTH, W_KEYWORDS, W_QUESTIONS = 0.5, 0.35, 0.15
MAX_TEXT_CHARS = 4000  # keywords and question marks are counted in this prefix only
_LOG_SAT = math.log1p(LENGTH_SATURATION_TOKENS)
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation if c != "-"})
# The same mapping for ASCII text as a bytes table: bytes.translate is a table lookup per byte,
# several times faster than str.translate's dict lookup per character.
_PUNCT_TO_SPACE_BYTES = bytes.maketrans(
    "".join(c for c in string.punctuation if c != "-").encode(),
    b" " * (len(string.punctuation) - 1),
)
_ANALYSIS_WORDS_BYTES: frozenset[bytes] = frozenset(w.encode() for w in ANALYSIS_WORDS)


def difficulty_score(request: Request) -> float:
    """Score a request's difficulty in [0, 1] from its length, analysis keywords and questions.

    score = round(0.5 * L + 0.35 * K + 0.15 * Q, 4) where
    L = min(1, ln(1 + tokens) / ln(1 + 8000)), tokens = prompt_tokens, or ceil(len(text) / 4)
    when prompt_tokens is 0; K = min(1, keyword hits / 3) with hits = distinct ANALYSIS_WORDS
    present plus phrases present; Q = min(1, number of '?' / 3); K and Q read the
    first 4000 characters of the text.
    """
    text = request.text or ""
    tokens = request.prompt_tokens or 0
    if tokens <= 0:
        tokens = -(-len(text) // 4)
    length = min(1.0, math.log1p(tokens) / _LOG_SAT) if tokens > 0 else 0.0
    if text:
        low = request.text_lower()
        if len(text) > MAX_TEXT_CHARS:
            text, low = text[:MAX_TEXT_CHARS], low[:MAX_TEXT_CHARS]
        if low.isascii():
            hits = len(_ANALYSIS_WORDS_BYTES.intersection(low.encode().translate(_PUNCT_TO_SPACE_BYTES).split()))
        else:
            hits = len(ANALYSIS_WORDS.intersection(low.translate(_PUNCT_TO_SPACE).split()))
        for phrase in ANALYSIS_PHRASES:
            if phrase in low:
                hits += 1
        keywords = min(1.0, hits / KEYWORD_SATURATION)
        questions = min(1.0, text.count("?") / QUESTION_SATURATION)
    else:
        keywords = questions = 0.0
    return round(W_LENGTH * length + W_KEYWORDS * keywords + W_QUESTIONS * questions, 4)
