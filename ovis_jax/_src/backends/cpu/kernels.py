"""Compiled CPU kernels (numba): run-length intersections, greedy matching and accumulation.

Every kernel is a plain loop compiled once with ``cache=True`` (a second process loads it from
disk instead of compiling) and ``nogil=True``, so that :func:`~ovis_jax._src.parallel.run_chunks`
can run it on disjoint chunks in a thread per core. No kernel imports or uses JAX. The RLE
strings are decoded by the scanners of :mod:`ovis_jax._src.masks.scan`.
"""

from __future__ import annotations

import numba
import numpy as np

from ovis_jax._src.backends.cpu.startup import prepare_numba
from ovis_jax._src.masks.scan import decode_boundaries

__all__ = ["accumulate", "group_intersections", "match_groups"]

prepare_numba()  # before the decorators: the cache is optional (see startup.py)
_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def _first_fg_ending_after(b, o, n_fg, x):
    """Index of the first foreground run of boundaries ``b[o:]`` that ends after ``x``."""
    lo, hi = 0, n_fg
    while lo < hi:
        mid = (lo + hi) >> 1
        if b[o + 2 * mid + 1] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _merge(a, oa, na, b, ob, nb, lo, hi):
    """Pixels in the foreground of both boundary lists, within the span ``[lo, hi)``."""
    i = _first_fg_ending_after(a, oa, na // 2, lo)
    j = _first_fg_ending_after(b, ob, nb // 2, lo)
    total = np.int64(0)
    while i < na // 2 and j < nb // 2:
        s = max(a[oa + 2 * i], b[ob + 2 * j])
        if s >= hi:
            break
        ea, eb = a[oa + 2 * i + 1], b[ob + 2 * j + 1]
        e = min(ea, eb)
        if e > s:
            total += e - s
        if ea < eb:
            i += 1
        else:
            j += 1
    return total


@_jit
def _decode_tracks(side, tracks):
    """Decodes every frame of ``tracks`` into one buffer of run boundaries; frame ``f``'s
    start there is written to the side's ``buf_off[f]``."""
    chars, char_start, frame_string, frame_start, nvals, _, _, _, buf_off = side
    total = 0
    for t in tracks:
        for f in range(frame_start[t], frame_start[t + 1]):
            s = frame_string[f]
            if s >= 0:
                buf_off[f] = total
                total += nvals[s]
    buf = np.empty(total, dtype=np.int64)
    for t in tracks:
        for f in range(frame_start[t], frame_start[t + 1]):
            s = frame_string[f]
            if s >= 0:
                decode_boundaries(chars, char_start[s], char_start[s + 1], buf, buf_off[f])
    return buf


@_jit
def _track_pair(d, dbuf, td, g, gbuf, tg):
    """Exact intersection of result track ``td`` and ground-truth track ``tg``, summed over
    frames, merging only frames where both are non-empty and their spans overlap."""
    _, _, dfs, dfst, dnv, darea, dfirst, dlast, doff = d
    _, _, gfs, gfst, gnv, garea, gfirst, glast, goff = g
    total = np.int64(0)
    for k in range(dfst[td + 1] - dfst[td]):
        fd, fg = dfst[td] + k, gfst[tg] + k
        sd, sg = dfs[fd], gfs[fg]
        if sd < 0 or sg < 0 or darea[sd] == 0 or garea[sg] == 0:
            continue
        lo, hi = max(dfirst[sd], gfirst[sg]), min(dlast[sd], glast[sg])
        if lo < hi:
            total += _merge(dbuf, doff[fd], dnv[sd], gbuf, goff[fg], gnv[sg], lo, hi)
    return total


@_jit
def group_intersections(d, g, d_tracks, d_start, g_tracks, g_start, pair_start, g0, g1, out):
    """Exact intersections, summed over frames, of every (result, ground truth) pair of
    groups ``g0:g1``; each group's tracks are decoded once into run boundaries.

    Args:
        d, g: per side, ``(chars, char_start, frame_string, frame_start, nvals, areas, firsts,
            lasts, buf_off)``: the :class:`~MaskTable` arrays plus an int64[F]
            scratch array.
        d_tracks, g_tracks: int64 tracks of each group, group after group (results in score
            order, ground truths in file order).
        d_start, g_start: int64[Q + 1] each group's slice of them.
        pair_start: int64[Q + 1] each group's first pair; pairs are result-major.
        out: int64[P] out.
    """
    for grp in range(g0, g1):
        dt = d_tracks[d_start[grp] : d_start[grp + 1]]
        gt = g_tracks[g_start[grp] : g_start[grp + 1]]
        if dt.shape[0] == 0 or gt.shape[0] == 0:
            continue
        dbuf = _decode_tracks(d, dt)
        gbuf = _decode_tracks(g, gt)
        p = pair_start[grp]
        for td in dt:
            for tg in gt:
                out[p] = _track_pair(d, dbuf, td, g, gbuf, tg)
                p += 1


@_jit
def match_groups(
    ious, pair_start, d_start, g_start, gt_ignore, gt_crowd, dt_area_out, thresholds, g0, g1,
    matched, ignored, matched_gt,
):  # fmt: skip
    """metric steps 9-10 for groups ``g0:g1`` at every threshold, area and occlusion range.

    Args:
        ious: float64[P] IoUs, per group result-major (results in score order, ground
            truths in file order).
        pair_start, d_start, g_start: int64[Q + 1] each group's first pair, kept result
            and ground truth.
        gt_ignore: bool[G, A, O]; gt_crowd: bool[G]; dt_area_out: bool[D, A].
        thresholds: float64[T].
        matched, ignored: bool[D, T, A, O] out.
        matched_gt: int64[D, T, A, O] out (pre-filled with -1): the matched ground truth's
            position in the groups' order; not written if its D is 0.
    """
    n_a, n_o = gt_ignore.shape[1], gt_ignore.shape[2]
    with_gt = matched_gt.shape[0] > 0
    for grp in range(g0, g1):
        d0, nd = d_start[grp], d_start[grp + 1] - d_start[grp]
        gg0, ng = g_start[grp], g_start[grp + 1] - g_start[grp]
        p0 = pair_start[grp]
        walk = np.empty(ng, dtype=np.int64)
        taken = np.empty(ng, dtype=np.bool_)
        for a in range(n_a):
            for o in range(n_o):
                w = 0
                for pas in range(2):  # not-ignored first, then ignored, each in file order
                    for j in range(ng):
                        if gt_ignore[gg0 + j, a, o] == (pas == 1):
                            walk[w] = j
                            w += 1
                for t in range(thresholds.shape[0]):
                    for j in range(ng):
                        taken[j] = False
                    for i in range(nd):
                        best = min(thresholds[t], 1 - 1e-10)
                        m = -1
                        for w in range(ng):
                            j = walk[w]
                            if taken[j] and not gt_crowd[gg0 + j]:
                                continue
                            if m >= 0 and not gt_ignore[gg0 + m, a, o] and gt_ignore[gg0 + j, a, o]:
                                break
                            iou = ious[p0 + i * ng + j]
                            if iou < best:
                                continue
                            best = iou
                            m = j
                        if m >= 0:
                            taken[m] = True
                            matched[d0 + i, t, a, o] = True
                            ignored[d0 + i, t, a, o] = gt_ignore[gg0 + m, a, o]
                            if with_gt:
                                matched_gt[d0 + i, t, a, o] = gg0 + m
                        elif dt_area_out[d0 + i, a]:
                            ignored[d0 + i, t, a, o] = True


@_jit
def accumulate(order, cat_start, rank, score, matched, ignored, npig, max_dets, rec_thrs, cats,
               slots, j0, j1, precision, recall, scores):  # fmt: skip
    """metric step 11 for the kept categories ``cats[j0:j1]``, in a compact layout.

    Args:
        order: int64[D] kept results sorted by (category, score descending, video, rank).
        cat_start: int64[K + 1] category ``k``'s results are ``order[cat_start[k]:...]``.
        rank: int64[D] score rank of each result within its (video, category) group.
        score: float64[D].
        matched, ignored: bool[D, T, A, O].
        npig: int64[K, A, O] not-ignored ground truths.
        max_dets: int64[M]; rec_thrs: float64[R].
        cats: int64[K] the kept categories (row ``j`` of the outputs is category ``cats[j]``).
        slots: int64[A, O, M] each slot's position on the outputs' I axis, -1 if not kept
            (not computed).
        precision: float64[T, R, K, I] out (pre-filled with -1), K the kept categories.
        recall: float64[T, K, I] out (pre-filled with -1).
        scores: float64[T, R, K, I] out (pre-filled with -1): the score of the result each
            precision entry is read at, 0 past the last; not written if its T is 0.
    """
    n_t, n_a, n_o = matched.shape[1], matched.shape[2], matched.shape[3]
    n_r = rec_thrs.shape[0]
    eps = np.spacing(1.0)
    with_scores = scores.shape[0] > 0
    for j in range(j0, j1):
        k = cats[j]
        n = cat_start[k + 1] - cat_start[k]
        if n == 0:
            total = 0  # a loop, not npig[k].sum(): NumPy's sum costs ~0.07 s of compilation
            for a in range(n_a):
                for o in range(n_o):
                    total += npig[k, a, o]
            if total == 0:
                continue
        rc = np.empty(n, dtype=np.float64)
        pr = np.empty(n, dtype=np.float64)
        for mi in range(max_dets.shape[0]):
            sel = np.empty(n, dtype=np.int64)
            ns = 0
            for x in range(cat_start[k], cat_start[k + 1]):
                if rank[order[x]] < max_dets[mi]:
                    sel[ns] = order[x]
                    ns += 1
            for a in range(n_a):
                for o in range(n_o):
                    s = slots[a, o, mi]
                    if npig[k, a, o] == 0 or s < 0:
                        continue
                    for t in range(n_t):
                        tp = 0.0
                        fp = 0.0
                        for x in range(ns):
                            d = sel[x]
                            if not ignored[d, t, a, o]:
                                if matched[d, t, a, o]:
                                    tp += 1.0
                                else:
                                    fp += 1.0
                            rc[x] = tp / npig[k, a, o]
                            pr[x] = tp / (fp + tp + eps)
                        recall[t, j, s] = rc[ns - 1] if ns else 0.0
                        for x in range(ns - 1, 0, -1):
                            if pr[x] > pr[x - 1]:
                                pr[x - 1] = pr[x]
                        x = 0
                        for r in range(n_r):
                            while x < ns and rc[x] < rec_thrs[r]:
                                x += 1
                            precision[t, r, j, s] = pr[x] if x < ns else 0.0
                            if with_scores:
                                scores[t, r, j, s] = score[sel[x]] if x < ns else 0.0
