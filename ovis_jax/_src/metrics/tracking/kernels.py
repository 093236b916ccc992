"""Compiled kernels (numba) of the tracking metrics: per-frame IoUs in TrackEval's layout and
the per-frame loops of HOTA and CLEAR.

Like :mod:`ovis_jax._src.backends.cpu.kernels`, every kernel is compiled once with
``cache=True`` and ``nogil=True``. The matching kernels decide a frame only when its optimal
assignment is unique (see :func:`_unique_argmax`); every other frame is handed back to the
caller, which runs ``scipy.optimize.linear_sum_assignment`` on it exactly as TrackEval does, so
tie rules stay TrackEval's.
"""

from __future__ import annotations

import numba
import numpy as np

from ovis_jax._src.backends.cpu.kernels import _merge
from ovis_jax._src.masks.scan import decode_boundaries

__all__ = [
    "add_pairs",
    "clear_apply",
    "clear_walk",
    "count_pairs",
    "hota_matches",
    "hota_norm",
    "sequence_ious",
]

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)
EPS = float(np.finfo("float").eps)


@_jit
def count_pairs(d_fs, d_fst, d_tracks, d_start, g_fs, g_fst, g_tracks, g_start, lengths, out):
    """int64[Q] out: per sequence, the pair entries ``sum_t n_tracker(t) * n_gt(t)``.

    Args:
        d_fs, g_fs: int64[F] each side's ``frame_string`` (-1: null frame).
        d_fst, g_fst: int64[X + 1] each side's ``frame_start``.
        d_tracks, g_tracks: int64 each sequence's tracks, sequence after sequence.
        d_start, g_start: int64[Q + 1] each sequence's slice of them.
        lengths: int64[Q] frames of each sequence's video.
    """
    for s in range(lengths.shape[0]):
        total = 0
        for t in range(lengths[s]):
            nd = 0
            for i in range(d_start[s], d_start[s + 1]):
                nd += d_fs[d_fst[d_tracks[i]] + t] >= 0
            if nd == 0:
                continue
            ng = 0
            for i in range(g_start[s], g_start[s + 1]):
                ng += g_fs[g_fst[g_tracks[i]] + t] >= 0
            total += nd * ng
        out[s] = total


@_jit
def _reserve(side, tracks):
    """A buffer for the run boundaries of every frame of ``tracks``, none decoded yet: frame
    ``f``'s slot starts at ``-(buf_off[f] + 1)`` until :func:`_decoded` decodes it."""
    _, _, frame_string, frame_start, nvals, _, _, _, buf_off = side
    total = 0
    for t in tracks:
        for f in range(frame_start[t], frame_start[t + 1]):
            s = frame_string[f]
            if s >= 0:
                buf_off[f] = -(total + 1)
                total += nvals[s]
    return np.empty(total, dtype=np.int64)


@_jit
def _decoded(side, buf, f):
    """Frame ``f``'s offset in ``buf``, decoding its string on first use."""
    chars, char_start, frame_string, _, _, _, _, _, buf_off = side
    o = buf_off[f]
    if o < 0:
        o = -(o + 1)
        s = frame_string[f]
        decode_boundaries(chars, char_start[s], char_start[s + 1], buf, o)
        buf_off[f] = o
    return o


@_jit
def sequence_ious(d, g, d_tracks, d_start, g_tracks, g_start, lengths, pair_start, s0, s1,
                  sim, frame, row, col):  # fmt: skip
    """Per-frame mask IoUs of sequences ``s0:s1`` in TrackEval's layout: per frame where both
    sides have a (non-null) mask, every (tracker, gt) pair, tracker-major, both in track order.

    A string is decoded once, and only if some pair needs it: a pair's intersection is merged
    only where both masks are non-empty and their foreground spans overlap.
    ``IoU = I / (a_d + a_g - I)``, 0 where the union is empty.

    Args:
        d, g: per side the kernel tuple of :func:`ovis_jax._src.similarity.cpu._side`.
        d_tracks, d_start, g_tracks, g_start, lengths: as :func:`count_pairs`.
        pair_start: int64[Q + 1] each sequence's slice of the outputs.
        sim: float64[J] out: the IoUs.
        frame, row, col: int64[J] out: the frame, the gt's row and the tracker's column within
            the frame's present detections.
    """
    _, _, dfs, dfst, dnv, darea, dfirst, dlast, _ = d
    _, _, gfs, gfst, gnv, garea, gfirst, glast, _ = g
    for s in range(s0, s1):
        dt = d_tracks[d_start[s] : d_start[s + 1]]
        gt = g_tracks[g_start[s] : g_start[s + 1]]
        if dt.shape[0] == 0 or gt.shape[0] == 0 or pair_start[s + 1] == pair_start[s]:
            continue
        dbuf = _reserve(d, dt)
        gbuf = _reserve(g, gt)
        p = pair_start[s]
        for t in range(lengths[s]):
            c = 0
            for td in dt:
                fd = dfst[td] + t
                sd = dfs[fd]
                if sd < 0:
                    continue
                r = 0
                for tg in gt:
                    fg = gfst[tg] + t
                    sg = gfs[fg]
                    if sg < 0:
                        continue
                    inter = np.int64(0)
                    if darea[sd] > 0 and garea[sg] > 0:
                        lo, hi = max(dfirst[sd], gfirst[sg]), min(dlast[sd], glast[sg])
                        if lo < hi:
                            od, og = _decoded(d, dbuf, fd), _decoded(g, gbuf, fg)
                            inter = _merge(dbuf, od, dnv[sd], gbuf, og, gnv[sg], lo, hi)
                    union = darea[sd] + garea[sg] - inter
                    sim[p] = inter / union if union > 0 else 0.0
                    frame[p], row[p], col[p] = t, r, c
                    p += 1
                    r += 1
                c += 1


@_jit
def _unique_argmax(score, n_g, n_d, out_g, out_d):
    """The matches of a frame's float64[n_g * n_d] ``score`` (gt-major) if its optimal
    assignment restricted to positive entries is unique; returns their number, or -1.

    Unique when every gt row with a positive maximum has it at one column only and those
    columns differ: then every optimal assignment (``linear_sum_assignment`` included, of any
    shape) gives each such row its maximum, and no other positive entry.
    """
    n = 0
    for i in range(n_g):
        best, arg, tie = 0.0, -1, False
        for j in range(n_d):
            v = score[i * n_d + j]
            if v > best:
                best, arg, tie = v, j, False
            elif v == best and arg >= 0:
                tie = True
        if arg < 0:
            continue
        if tie:
            return -1
        for k in range(n):
            if out_d[k] == arg:
                return -1
        out_g[n], out_d[n] = i, arg
        n += 1
    return n


@_jit
def _pairwise(a, o, n):
    """NumPy's pairwise summation of ``a[o:o + n]`` (its ``pairwise_sum``, blocks of 128)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[o + i]
        return res
    if n <= 128:
        r = np.empty(8)
        for j in range(8):
            r[j] = a[o + j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[o + i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[o + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, o, n2) + _pairwise(a, o + n2, n - n2)


@_jit
def hota_norm(sim, pair_start, both, n_gt, n_tr, norm):
    """Per pair entry TrackEval's normalised similarity ``s / (col_sum + row_sum - s)`` (0
    where the denominator is not above EPS), bit for bit as NumPy computes it.

    TrackEval's frame matrix is (gt, tracker) in Fortran order: NumPy sums a column (over the
    contiguous gt axis) pairwise, and a row sequentially over the trackers, or pairwise when
    there is one gt (the tracker axis is then contiguous).

    Args:
        sim: float64[J] the pair entries (per frame tracker-major).
        pair_start: int64[F + 1] each frame's slice of the entries.
        both: int64 the frames with detections on both sides.
        n_gt, n_tr: int64[F] detections per frame.
        norm: float64[J] out.
    """
    rows = np.zeros(8)
    cols = np.zeros(8)
    for t in both:
        p0, ng, nd = pair_start[t], n_gt[t], n_tr[t]
        if rows.shape[0] < ng:
            rows = np.zeros(ng)
        if cols.shape[0] < nd:
            cols = np.zeros(nd)
        for j in range(nd):
            cols[j] = _pairwise(sim, p0 + j * ng, ng)
        if ng == 1:
            rows[0] = _pairwise(sim, p0, nd)
        else:
            for i in range(ng):
                rows[i] = 0.0
            for j in range(nd):
                for i in range(ng):
                    rows[i] += sim[p0 + j * ng + i]
        for j in range(nd):
            for i in range(ng):
                s = sim[p0 + j * ng + i]
                denom = cols[j] + rows[i] - s
                norm[p0 + j * ng + i] = s / denom if denom > 0 + EPS else 0.0


@_jit
def add_pairs(out, gi, ti, values):
    """``out[gi[e], ti[e]] += values[e]`` in entry order (``np.add.at``)."""
    for e in range(values.shape[0]):
        out[gi[e], ti[e]] += values[e]


@_jit
def _scratch(score, rg, rd, ng, nd):
    """The per-frame scratch buffers (scores, matched rows and columns), grown to hold a frame
    of ``ng`` ground truths and ``nd`` tracker detections."""
    if ng * nd > score.shape[0]:
        score = np.zeros(ng * nd)
    if ng > rg.shape[0]:
        rg = np.zeros(ng, dtype=np.int64)
        rd = np.zeros(ng, dtype=np.int64)
    return score, rg, rd


@_jit
def hota_matches(sim, align, gt_id, tracker_id, gt_start, tracker_start, pair_start, both,
                 n_gt, n_tr, mg, mt, ms, hard):  # fmt: skip
    """HOTA's per-frame matches where the assignment of ``align * sim`` is unique.

    Args:
        sim: float64[J] the pair entries; align: float64[G, D] the alignment scores.
        gt_id, tracker_id: int64[E] the detections' ids; gt_start, tracker_start,
            pair_start: int64[F + 1] each frame's slices.
        both: int64 the frames with detections on both sides.
        mg, mt, ms: int64, int64, float64 out (as long as ``sim``): matched gt id, tracker id
            and similarity.
        hard: int64 out (as long as ``both``): frames left to ``linear_sum_assignment``.

    Returns:
        ``(matches, hard frames)`` written.
    """
    n, n_hard = 0, 0
    score = np.zeros(64)
    rg = np.zeros(64, dtype=np.int64)
    rd = np.zeros(64, dtype=np.int64)
    for t in both:
        p0, ng, nd = pair_start[t], n_gt[t], n_tr[t]
        g0, d0 = gt_start[t], tracker_start[t]
        score, rg, rd = _scratch(score, rg, rd, ng, nd)
        for i in range(ng):
            for j in range(nd):
                score[i * nd + j] = align[gt_id[g0 + i], tracker_id[d0 + j]] * sim[p0 + j * ng + i]
        if ng == 1 and nd == 1:
            k, rg[0], rd[0] = 1, 0, 0
        else:
            k = _unique_argmax(score, ng, nd, rg, rd)
        if k < 0:
            hard[n_hard] = t
            n_hard += 1
            continue
        for m in range(k):
            mg[n], mt[n] = gt_id[g0 + rg[m]], tracker_id[d0 + rd[m]]
            ms[n] = sim[p0 + rd[m] * ng + rg[m]]
            n += 1
    return n, n_hard


@_jit
def clear_apply(mg, md, ms, state_i, state_f, prev_id, prev_step, matched, frag, last):
    """Adds one frame's CLEAR matches (gt ids ``mg``, tracker ids ``md``, similarities
    ``ms``) to the walk's state, as TrackEval's loop body does.

    ``state_i`` is int64[3] (tp, idsw, number of gt ids in ``last``), ``state_f`` float64[1]
    (MOTP sum); ``prev_id`` / ``prev_step`` hold -1 for TrackEval's NaN.
    """
    for k in range(mg.shape[0]):
        g, d = mg[k], md[k]
        p = prev_id[g]
        if p >= 0 and d != p:
            state_i[1] += 1
        if prev_step[g] < 0:
            frag[g] += 1
        prev_id[g] = d
    for k in range(state_i[2]):
        prev_step[last[k]] = -1
    for k in range(mg.shape[0]):
        prev_step[mg[k]] = md[k]
        last[k] = mg[k]
        matched[mg[k]] += 1
        state_f[0] += ms[k]
    state_i[2] = mg.shape[0]
    state_i[0] += mg.shape[0]


@_jit
def clear_walk(sim, gt_id, tracker_id, gt_start, tracker_start, pair_start, both, n_gt, n_tr,
               k0, threshold, state_i, state_f, prev_id, prev_step, matched, frag,
               last):  # fmt: skip
    """CLEAR's walk over ``both[k0:]`` until a frame whose assignment is not unique.

    The score of a frame is TrackEval's: ``1000`` if the tracker was the gt's match in the
    previous frame with both sides, plus the similarity, and 0 where the similarity is below
    ``threshold - EPS``; positive entries are matches.

    Returns:
        The index in ``both`` of the first frame left to ``linear_sum_assignment``, or
        ``both.shape[0]`` when the walk is done.
    """
    score = np.zeros(64)
    rg = np.zeros(64, dtype=np.int64)
    rd = np.zeros(64, dtype=np.int64)
    for kk in range(k0, both.shape[0]):
        t = both[kk]
        p0, ng, nd = pair_start[t], n_gt[t], n_tr[t]
        g0, d0 = gt_start[t], tracker_start[t]
        score, rg, rd = _scratch(score, rg, rd, ng, nd)
        for i in range(ng):
            g = gt_id[g0 + i]
            for j in range(nd):
                s = sim[p0 + j * ng + i]
                v = 0.0
                if s >= threshold - EPS:
                    v = 1000.0 * (prev_step[g] == tracker_id[d0 + j]) + s
                score[i * nd + j] = v
        k = _unique_argmax(score, ng, nd, rg, rd)
        if k < 0:
            return kk
        n = 0
        for m in range(k):
            if score[rg[m] * nd + rd[m]] > 0 + EPS:
                rg[n], rd[n] = rg[m], rd[m]
                n += 1
        mg = np.empty(n, dtype=np.int64)
        md = np.empty(n, dtype=np.int64)
        ms = np.empty(n)
        for m in range(n):
            mg[m], md[m] = gt_id[g0 + rg[m]], tracker_id[d0 + rd[m]]
            ms[m] = sim[p0 + rd[m] * ng + rg[m]]
        clear_apply(mg, md, ms, state_i, state_f, prev_id, prev_step, matched, frag, last)
    return both.shape[0]
