"""User-facing warning texts shared by the file path and the streaming evaluator (one place,
so that both say the same thing; they reach the user through ``EvalResult.warnings``)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["EMPTY_RESULTS", "unknown_categories"]

EMPTY_RESULTS = "the results list is empty: every AP is 0 where ground truth exists"


def unknown_categories(count: int, category_ids: Sequence[int]) -> str:
    """``count`` results whose category ids (``category_ids``, distinct, ascending) are not
    in the ground truth; the first ten ids are named."""
    shown = ", ".join(str(int(c)) for c in category_ids[:10])
    more = ", ..." if len(category_ids) > 10 else ""
    return (
        f"{count} result(s) have a category_id not in the ground truth ({shown}{more}) and are "
        "not evaluated"
    )
