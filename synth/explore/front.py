"""The Pareto front of fidelity against area, and the best point under an area budget.

A point is on the front when no other point is at most as large and at least as
faithful, and strictly better in one of the two. Fidelity is compared as a tuple
(the workload's fidelity, then minus the KL divergence where there is one), so that
the many ties of a top-1 agreement measured on a few hundred inputs are broken by
how close the output distributions came, not by list order.
"""

from __future__ import annotations

__all__ = ["score", "dominates", "pareto_front", "best_within"]


def score(row: dict) -> tuple:
    """The comparable fidelity of a result row: (fidelity, -KL) or (fidelity,)."""
    return (row["fidelity"], -row["kl"]) if "kl" in row else (row["fidelity"],)


def dominates(a: dict, b: dict) -> bool:
    """a is no larger and no less faithful than b, and better in one of them."""
    sa, sb = score(a), score(b)
    return (
        a["area_um2"] <= b["area_um2"] and sa >= sb and (a["area_um2"] < b["area_um2"] or sa > sb)
    )


def pareto_front(rows: list[dict]) -> list[dict]:
    """The non-dominated rows, smallest area first.

    Sorted by area (ties: best score first), one pass keeps each row that beats the
    best score seen so far; a row equal in both area and score to a kept one is kept
    too (neither dominates the other).
    """
    ordered = sorted(rows, key=lambda r: (r["area_um2"], tuple(-s for s in score(r))))
    front, best = [], None
    for r in ordered:
        s = score(r)
        if best is None or s > best:
            front.append(r)
            best = s
        elif s == best and front and r["area_um2"] == front[-1]["area_um2"]:
            front.append(r)
    return front


def best_within(rows: list[dict], budget: float) -> dict | None:
    """The most faithful row whose area is at most ``budget`` (smaller area on ties)."""
    fits = [r for r in rows if r["area_um2"] <= budget]
    if not fits:
        return None
    return max(fits, key=lambda r: (score(r), -r["area_um2"]))
