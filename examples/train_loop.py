"""Evaluating a toy video instance segmentation model inside a JAX training loop.

A per-pixel logistic regression (a 1×1 convolution: one mask query per category) learns to
segment synthetic OVIS-like videos. Every ``--eval-every`` steps the official OVIS mask AP is
computed with :class:`~StreamingEvaluator`: the model's low-resolution mask
logits are resized on device to each video's own size (:func:`resize_masks`), batches of videos
update the evaluator's state, and the state is checkpointed together with the model's parameters
by one orbax ``CheckpointManager``. At the end the latest checkpoint is restored and its AP
recomputed.

Run it (CPU, a few seconds)::

    python examples/train_loop.py
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax._src.streaming.evaluator import StreamingEvaluator, resize_masks
from ovis_jax.testing import synthetic

MODEL_HW = (32, 48)  # the model's resolution (every video is resized to it)
BATCH = 4  # videos per evaluation batch


def category_masks(gt: ovis_jax.GroundTruth, canvas: tuple[int, int, int]) -> np.ndarray:
    """float32[V, K, F, H, W]: per video and category, the union of its ground-truth masks."""
    f, h, w = canvas
    k = gt.category_ids.shape[0]
    out = np.zeros((len(gt.videos), k, f, h, w), np.float32)
    pos = {v.id: i for i, v in enumerate(gt.videos)}
    for g, rles in enumerate(gt.rles):
        v = pos[int(gt.video_id[g])]
        c = int(np.searchsorted(gt.category_ids, gt.category_id[g]))
        for t, rle in enumerate(rles):
            if rle is not None:
                with warnings.catch_warnings():  # pycocotools' NumPy 2 DeprecationWarning
                    warnings.simplefilter("ignore", DeprecationWarning)
                    m = mask_utils.decode(rle)
                out[v, c, t, : m.shape[0], : m.shape[1]] += m
    return np.minimum(out, 1.0)


def make_data(seed: int):
    """Ground truth, model inputs [V, F, h, w, C] and targets [V, K, F, h, w] at model size."""
    gt_dict, _ = synthetic.ovis_like(
        seed=seed,
        num_videos=8,
        num_categories=3,
        tracks_per_video=1.0,
        frames=(4, 6),
        sizes=((40, 56), (48, 64), (32, 48)),
        predictions_per_video=0,
    )
    gt = ovis_jax.load_ground_truth(gt_dict)
    canvas = (
        max(v.length for v in gt.videos),
        max(v.height for v in gt.videos),
        max(v.width for v in gt.videos),
    )
    union = category_masks(gt, canvas)
    rng = np.random.default_rng(seed)
    small_t, small_i = [], []
    for i, v in enumerate(gt.videos):
        # The "image": each category's pixels light up one channel, plus noise and a
        # distractor channel; resized from the video's size to the model's.
        crop = union[i, :, :, : v.height, : v.width]  # [K, F, h, w]
        image = np.concatenate([crop * 0.8, rng.random((1, *crop.shape[1:]))]) + rng.normal(
            0.0, 0.2, (crop.shape[0] + 1, *crop.shape[1:])
        )
        size = (image.shape[1], *MODEL_HW)
        small_i.append(jax.image.resize(image, (image.shape[0], *size), "linear"))
        small_t.append(jax.image.resize(crop, (crop.shape[0], *size), "linear") >= 0.5)
    inputs = jnp.stack(small_i).transpose(0, 2, 3, 4, 1)  # [V, F, h, w, C]
    targets = jnp.stack(small_t).astype(jnp.float32)  # [V, K, F, h, w]
    return gt, canvas, inputs, targets


def forward(params, x):
    """Mask logits [V, K, F, h, w] from inputs [V, F, h, w, C] (a 1×1 convolution)."""
    logits = jnp.einsum("vfhwc,ck->vkfhw", x, params["w"])
    return logits + params["b"][None, :, None, None, None]


def loss_fn(params, x, y, pos_weight=10.0):
    """Binary cross-entropy, foreground pixels weighted up (objects are small)."""
    logits = forward(params, x)
    log_p = jax.nn.log_sigmoid(logits)
    log_not_p = jax.nn.log_sigmoid(-logits)
    return -jnp.mean(pos_weight * y * log_p + (1.0 - y) * log_not_p)


@jax.jit
def sgd_step(params, x, y, lr):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), loss


def evaluate(ev, params, gt, canvas, inputs, state=None):
    """Runs the model over every video, batch by batch, updating the evaluator state."""
    state = ev.init() if state is None else state
    ids = [v.id for v in gt.videos]
    sizes = np.asarray([[v.height, v.width] for v in gt.videos], np.int32)
    labels = np.tile(gt.category_ids.astype(np.int32), (BATCH, 1))
    for k in range(0, len(ids), BATCH):
        rows = list(range(k, min(k + BATCH, len(ids))))
        pad = BATCH - len(rows)
        batch_ids = [ids[r] for r in rows] + [ev.pad_video_id] * pad  # fixed shape: no retrace
        rows = rows + [rows[0]] * pad
        logits = forward(params, inputs[np.asarray(rows)])  # [B, K, F, h, w]
        masks = resize_masks(logits, sizes[rows], canvas=canvas[1:], threshold=0.0)
        probs = jax.nn.sigmoid(logits)
        fg = probs >= 0.5
        # A query's score: its mean probability over its foreground pixels.
        scores = jnp.sum(probs * fg, axis=(2, 3, 4)) / jnp.maximum(jnp.sum(fg, axis=(2, 3, 4)), 1)
        state = ev.update(state, batch_ids, masks, scores, labels)
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--lr", type=float, default=3.0)
    parser.add_argument("--checkpoint-dir", default=None)
    args = parser.parse_args()
    logging.getLogger("ovis_jax").setLevel(logging.ERROR)

    gt, canvas, inputs, targets = make_data(seed=0)
    num_k = gt.category_ids.shape[0]
    ev = StreamingEvaluator(gt, max_predictions=num_k)
    key = jax.random.PRNGKey(0)
    params = {
        "w": 0.01 * jax.random.normal(key, (inputs.shape[-1], num_k)),
        "b": jnp.zeros((num_k,)),
    }
    directory = args.checkpoint_dir or tempfile.mkdtemp(prefix="ovis_jax_train_loop_")
    logged = {}
    with ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(max_to_keep=2)
    ) as mgr:
        for step in range(1, args.steps + 1):
            params, loss = sgd_step(params, inputs, targets, args.lr)
            if step % args.eval_every == 0 or step == args.steps:
                state = evaluate(ev, params, gt, canvas, inputs)
                result = ev.compute(state)
                logged[step] = result.stats
                print(
                    f"step {step:4d}  loss {float(loss):.4f}  AP {result.stats['AP']:.4f}  "
                    f"AP50 {result.stats['AP50']:.4f}  AR10 {result.stats['AR10']:.4f}"
                )
                mgr.save(
                    step,
                    args=ocp.args.Composite(
                        params=ocp.args.StandardSave(params),
                        evaluator=ocp.args.StandardSave(state),
                    ),
                )
        mgr.wait_until_finished()
        # Restore the latest checkpoint (e.g. after a restart) and recompute its numbers.
        step = mgr.latest_step()
        restored = mgr.restore(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore(params),
                evaluator=ocp.args.StandardRestore(ev.abstract_state()),
            ),
        )
    again = ev.compute(ev.validate(restored.evaluator))
    assert again.stats == logged[step], (again.stats, logged[step])
    print(f"restored step {step} from {directory}: AP {again.stats['AP']:.4f} (same as logged)")
    # The evaluator state holds everything: the same numbers as the official file path.
    print(ovis_jax.format_summary(again))
    if args.checkpoint_dir is None:  # our own temporary directory: leave nothing behind
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
