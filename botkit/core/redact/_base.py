"""What every redaction rule shares: the ``Match`` it reports and the set of claimed spans."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Match", "Spans"]


@dataclass(frozen=True, slots=True)
class Match:
    """One piece of PII: ``text[start:end]`` is replaced by ``<kind>``.

    ``kind`` is one of ``EMAIL``, ``IBAN``, ``CARD``, ``CVC``, ``EXPIRY``, ``PHONE``, ``DOB``,
    ``ADDRESS``, ``NAME``.
    """

    kind: str
    start: int
    end: int


class Spans:
    """Claimed character ranges, merged, answering "does [start, end) touch any?" in O(log n)."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [start for start, _ in merged]
        self._ends = [end for _, end in merged]

    def overlaps(self, start: int, end: int) -> bool:
        k = bisect.bisect_left(self._starts, end)
        return k > 0 and self._ends[k - 1] > start
