"""Greedy matching (metric steps 8-10) for many (video, category) groups at once, under jit.

The official algorithm walks, for each result in score order, the ground truths sorted
not-ignored first (file order) then ignored (file order), keeping the last one whose IoU is at
least the best so far. That walk is equivalent to a choice that needs no sorting:

- among the available (not yet matched, or crowd) not-ignored ground truths with
  ``IoU >= min(t, 1 - 1e-10)``, take the *last* (in file order) of those with the largest IoU;
- only if there is none, the same among the available ignored ones.

So one ``lax.scan`` over the results, vectorised over groups × thresholds × area ranges ×
occlusion ranges × ground truths, reproduces every tie rule. Shapes use the legend of
:mod:`ovis_jax._src.legend` (Q groups, D results and G ground truths per group).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["match_groups"]


@jax.jit
def match_groups(
    ious: jax.Array,
    gt_valid: jax.Array,
    gt_crowd: jax.Array,
    gt_ignore: jax.Array,
    dt_valid: jax.Array,
    dt_area_out: jax.Array,
    thresholds: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Greedy matching of Q padded groups (call under ``jax.enable_x64(True)``).

    Args:
        ious: float64[Q, D, G] track IoUs; results in score order, ground truths in file order.
        gt_valid: bool[Q, G] real (not padding) ground truths.
        gt_crowd: bool[Q, G] crowd ground truths (may absorb any number of results).
        gt_ignore: bool[Q, A, O, G] ground truths ignored under each area × occlusion range.
        dt_valid: bool[Q, D] real results.
        dt_area_out: bool[Q, A, D] results whose average area is outside the area range.
        thresholds: float64[T] IoU thresholds.

    Returns:
        ``(matched, ignored)``, bool[Q, D, T, A, O] each: the result is matched at threshold t;
        the result is ignored (matched to an ignored ground truth, or unmatched and outside the
        area range).
    """
    n_p, _, n_g = ious.shape
    n_a, n_o = gt_ignore.shape[1], gt_ignore.shape[2]
    n_t = thresholds.shape[0]
    best0 = jnp.minimum(thresholds, 1 - 1e-10)[None, :, None, None, None]  # [1, T, 1, 1, 1]
    ignore = gt_ignore[:, None]  # [Q, 1, A, O, G]
    fixed = (gt_valid & ~gt_crowd)[:, None, None, None, :]
    crowd = (gt_valid & gt_crowd)[:, None, None, None, :]
    gidx = jnp.arange(n_g)

    def step(taken, xs):
        iou, valid, area_out = xs  # [Q, G], [Q], [Q, A]
        iou = iou[:, None, None, None, :]
        ok = ((fixed & ~taken) | crowd) & (iou >= best0)
        cand_main = ok & ~ignore
        cand = jnp.where(cand_main.any(-1, keepdims=True), cand_main, ok & ignore)
        best = jnp.max(jnp.where(cand, iou, -1.0), axis=-1, keepdims=True, initial=-1.0)
        m = jnp.max(jnp.where(cand & (iou == best), gidx, -1), axis=-1, initial=-1)  # [Q, T, A, O]
        matched = (m >= 0) & valid[:, None, None, None]
        onehot = (gidx == m[..., None]) & matched[..., None]
        taken = taken | onehot
        m_ignored = jnp.any(onehot & ignore, axis=-1)
        ignored = jnp.where(matched, m_ignored, area_out[:, None, :, None])
        return taken, (matched, ignored & valid[:, None, None, None])

    taken0 = jnp.zeros((n_p, n_t, n_a, n_o, n_g), dtype=bool)
    xs = (jnp.swapaxes(ious, 0, 1), dt_valid.T, jnp.moveaxis(dt_area_out, 2, 0))
    _, (matched, ignored) = jax.lax.scan(step, taken0, xs)
    return jnp.moveaxis(matched, 0, 1), jnp.moveaxis(ignored, 0, 1)
