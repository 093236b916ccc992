"""Pictures of an evaluation (``--plots DIR``): precision-recall curves, AP per category and,
when the error analysis ran, the cost of each error type.

matplotlib is an optional dependency (``pip install 'ovis_jax[plots]'``), imported on first use.
Figures are drawn with the object-oriented API on an Agg canvas: no pyplot, no global backend
switch, nothing shown on screen. The data is taken from the :class:`~ovis_jax.EvalResult`;
nothing is recomputed here.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from ovis_jax._src.metrics.ap.summary import EvalResult

__all__ = ["MATPLOTLIB_HINT", "have_matplotlib", "plot_results"]

MATPLOTLIB_HINT = "pip install 'ovis_jax[plots]'"

#: Above this many categories, the per-category plot shows the sorted AP of all categories
#: without names, plus the best and worst ones by name.
NAMED_CATEGORIES = 60
#: How many of the best and of the worst categories are named when there are more.
EXTREMES = 25


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"plotting needs matplotlib: {MATPLOTLIB_HINT}") from e
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _mean_curve(p: np.ndarray) -> np.ndarray:
    """float64[R]: the mean over the leading axes of the defined (> -1) entries of p[..., R]."""
    defined = p > -1
    total = np.where(defined, p, 0.0).sum(axis=0)
    count = defined.sum(axis=0)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def pr_curves(result: EvalResult) -> dict[str, np.ndarray]:
    """Mean precision over the categories at each recall threshold (area and occlusion "all",
    the largest maxDet): ``{"IoU=0.50": float64[R], "IoU=0.75": ..., "IoU=0.50:0.95": ...}``
    (NaN where no category is defined). The mean of a curve is the matching AP."""
    iou = result.params.iou_array
    _, p, _ = result.slot_curves(0, 0, -1)  # [T, R, K] of the categories with ground truth
    curves = {}
    for thr in (0.5, 0.75):
        t = np.flatnonzero(iou == thr)
        if t.size:
            curves[f"IoU={thr:.2f}"] = _mean_curve(p[t[0]].T)
    every = p.transpose(0, 2, 1).reshape(-1, p.shape[1])  # [T * K, R]
    curves[f"IoU={iou[0]:.2f}:{iou[-1]:.2f}"] = _mean_curve(every)
    return curves


def _plot_pr(result: EvalResult, path: str) -> None:
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    rec = result.params.recall_array
    for (label, curve), style in zip(pr_curves(result).items(), ("-", "--", ":"), strict=False):
        ap = float(np.nanmean(curve)) if np.isfinite(curve).any() else float("nan")
        ax.plot(rec, curve, style, linewidth=2, label=f"{label}  (AP {ap:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision (mean over categories)")
    max_det = result.params.max_dets[-1]
    ax.set_title(f"Precision-recall, {result.format.upper()} format, maxDets={max_det}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.savefig(path)


def _category_ap(result: EvalResult) -> tuple[np.ndarray, list[str]]:
    """AP per category (IoU 0.50:0.95, area / occlusion "all", largest maxDet) of the categories
    that have ground truth, sorted descending, and their names."""
    cats, p, _ = result.slot_curves(0, 0, -1)  # [T, R, K] of the categories with ground truth
    ap = _mean_curve(p.reshape(-1, p.shape[2]))
    keep = np.flatnonzero(np.isfinite(ap))
    order = keep[np.argsort(-ap[keep], kind="stable")]
    return ap[order], [result.category_names[cats[k]] for k in order]


def _bars(ax, ap: np.ndarray, names: list[str], title: str) -> None:
    y = np.arange(ap.shape[0])
    ax.barh(y, ap, color="tab:blue")
    ax.set_yticks(y, [n if len(n) <= 28 else n[:27] + "…" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("AP (IoU 0.50:0.95)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    for yi, v in zip(y, ap, strict=True):
        if v > 0.85:  # inside the bar's end, in white
            ax.text(v - 0.01, yi, f"{v:.3f}", va="center", ha="right", fontsize=7, color="white")
        else:
            ax.text(v + 0.01, yi, f"{v:.3f}", va="center", fontsize=7)


def _plot_per_category(result: EvalResult, path: str) -> None:
    ap, names = _category_ap(result)
    missing = len(result.category_names) - ap.shape[0]
    note = f" ({missing} without ground truth not shown)" if missing else ""
    if ap.shape[0] <= NAMED_CATEGORIES:
        fig = _figure(7.0, max(2.5, 0.8 + 0.22 * ap.shape[0]))
        _bars(fig.add_subplot(), ap, names, f"AP per category, sorted{note}")
        fig.savefig(path)
        return
    n = EXTREMES
    fig = _figure(13.0, 10.0)
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 3.2))
    ax = fig.add_subplot(grid[0, :])
    rank = np.arange(1, ap.shape[0] + 1)
    ax.fill_between(rank, ap, step="mid", alpha=0.4)
    ax.plot(rank, ap, drawstyle="steps-mid", linewidth=1)
    ax.axhline(float(ap.mean()), color="tab:red", linestyle="--", linewidth=1,
               label=f"mean (AP) {ap.mean():.3f}")  # fmt: skip
    ax.set(xlim=(1, ap.shape[0]), ylim=(0, 1), xlabel="category rank", ylabel="AP")
    ax.set_title(f"AP of all {ap.shape[0]} categories, sorted{note}", fontsize=10)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    _bars(fig.add_subplot(grid[1, 0]), ap[:n], names[:n], f"best {n}")
    # The worst with AP > 0 (a long tail of zeros would say nothing), zeros counted in the title.
    zeros = int(np.count_nonzero(ap == 0))
    low = np.flatnonzero(ap > 0)[-n:]
    title = f"worst {low.size} with AP > 0" + (f" ({zeros} categories have AP 0)" if zeros else "")
    _bars(fig.add_subplot(grid[1, 1]), ap[low], [names[i] for i in low], title)
    fig.savefig(path)


def _plot_errors(result: EvalResult, path: str) -> None:
    analysis = result.errors
    items = list(analysis.errors.items())
    fig = _figure(7.0, 0.9 + 0.42 * len(items))
    ax = fig.add_subplot()
    names = [k for k, _ in items]
    # Fractions, as in the text table and the JSON (not AP points).
    values = np.asarray([v for _, v in items], dtype=np.float64)
    y = np.arange(len(items))
    special = {"false_positive", "false_negative"}
    colors = ["tab:gray" if k in special else "tab:orange" for k in names]
    ax.barh(y, values, color=colors)
    counts = getattr(analysis, "counts", {})
    ax.set_yticks(y, [f"{k} ({counts[k]})" if k in counts else k for k in names])
    ax.invert_yaxis()
    top = max(float(values.max(initial=0.0)), 0.01)
    ax.set_xlim(0, top * 1.18)
    for yi, v in zip(y, values, strict=True):
        ax.text(v + top * 0.01, yi, f"{v:.4f}", va="center", fontsize=8)
    ax.set_xlabel("dAP50 (AP50 gained by fixing that error type, a fraction as in the table)")
    ax.set_title(
        f"Error analysis: AP50 = {analysis.ap50:.4f}; gray: special (all FP / all FN)",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)


#: Where a point's name may go, in points from the point (first free one wins).
_LABEL_OFFSETS = ((4, -3), (4, 5), (4, -11), (-4, -3), (-4, 5), (-4, -11), (4, 13), (4, -19))


def _label_points(ax, points: list, names: list, *, avoid=(), fontsize: float = 7) -> None:
    """Names beside points, each at the first offset where its (approximate) box overlaps no
    name placed before it nor a marker at ``avoid``; the last offset is kept when none is free."""
    scale = 72.0 / ax.figure.dpi
    placed: list[tuple[float, float, float, float]] = []
    for x, y in avoid:
        px, py = ax.transData.transform((x, y)) * scale
        placed.append((px - 6, py - 6, px + 6, py + 6))
    for (x, y), name in zip(points, names, strict=True):
        px, py = ax.transData.transform((x, y)) * scale
        w, h = 0.6 * fontsize * len(name), fontsize
        for dx, dy in _LABEL_OFFSETS:
            x0 = px + dx if dx > 0 else px + dx - w
            box = (x0, py + dy, x0 + w, py + dy + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):  # fmt: skip
                break
        placed.append(box)
        ax.annotate(name, (x, y), fontsize=fontsize, xytext=(dx, dy), textcoords="offset points",
                    ha="left" if dx > 0 else "right", zorder=4)  # fmt: skip


def _plot_tracking(result: EvalResult, path: str) -> None:
    """DetA against AssA per category (HOTA = sqrt(DetA * AssA) on the dashed curves)."""
    tracking = result.metrics["tracking"]
    rows = [c for c in tracking.per_category if c["HOTA_TP"] + c["HOTA_FN"] > 0]
    det = np.asarray([c["DetA"] for c in rows], dtype=np.float64)
    ass = np.asarray([c["AssA"] for c in rows], dtype=np.float64)
    fig = _figure(7.0, 6.6)
    ax = fig.add_subplot()
    # Zoomed on the points (from 0, so the iso-curves keep their meaning).
    top = min(1.0, max(float(det.max(initial=0.0)), float(ass.max(initial=0.0))) * 1.1 + 0.05)
    x = np.linspace(top / 400, top, 400)
    for h in np.arange(1, 10) / 10:
        y = h * h / x
        keep = y <= top
        if keep.any() and h < top:
            ax.plot(x[keep], y[keep], color="0.75", linestyle="--", linewidth=0.8)
            ax.text(h, h, f"HOTA {h:.1f}", fontsize=7, color="0.45", ha="left", va="bottom")
    ax.scatter(det, ass, s=22, color="tab:blue", zorder=3)
    ax.set(xlim=(0, top), ylim=(0, top))
    ax.set_aspect("equal")
    ax.apply_aspect()  # the final data-to-points transform, for the labels' boxes
    order = np.argsort(np.sqrt(det * ass), kind="stable")
    named = order if len(rows) <= 12 else np.r_[order[-4:][::-1], order[:4]]
    average = tracking.class_average_present
    mean = [(average["DetA"], average["AssA"])] if rows else []
    names = [rows[i]["name"] for i in named]
    _label_points(ax, [(det[i], ass[i]) for i in named], names, avoid=mean)
    if rows:
        ax.scatter([average["DetA"]], [average["AssA"]], marker="*", s=140, color="tab:red",
                   zorder=5, label="mean over categories with ground truth")  # fmt: skip
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xlabel="DetA (detection accuracy)", ylabel="AssA (association accuracy)")
    missing = len(tracking.per_category) - len(rows)
    named_note = "" if len(rows) <= 12 else "; the 4 best and 4 worst named"
    missing_note = f"; {missing} without ground truth not shown" if missing else ""
    ax.set_title(
        f"HOTA per category: class average {tracking.class_average['HOTA']:.4f}\n"
        f"dashed: HOTA = sqrt(DetA x AssA){named_note}{missing_note}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    fig.savefig(path)


def plot_results(result: EvalResult, out_dir: str | os.PathLike) -> list[str]:
    """Draws the evaluation's pictures into ``out_dir`` (created if needed).

    - ``pr_curve.png``: precision against recall (mean over categories, area / occlusion
      "all", maxDet 100) at IoU 0.50, 0.75 and averaged over the thresholds;
    - ``per_category.png``: AP per category, sorted (all names up to 60 categories; beyond, the
      sorted AP of every category plus the best and worst 25 by name);
    - ``errors.png``: dAP50 of each error type, when ``result.errors`` is set;
    - ``tracking.png``: DetA against AssA per category with HOTA's iso-curves, when the
      tracking metrics were computed.

    Returns:
        The paths written.

    Raises:
        ImportError: without matplotlib (``pip install 'ovis_jax[plots]'``).
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, draw in (("pr_curve.png", _plot_pr), ("per_category.png", _plot_per_category)):
        path = os.path.join(out_dir, name)
        draw(result, path)
        written.append(path)
    if result.errors is not None:
        path = os.path.join(out_dir, "errors.png")
        _plot_errors(result, path)
        written.append(path)
    if "tracking" in result.metrics:
        path = os.path.join(out_dir, "tracking.png")
        _plot_tracking(result, path)
        written.append(path)
    return written
