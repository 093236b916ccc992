"""The streaming evaluator: same numbers as the file path, batching, merge, checkpoints, devices."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import count_compiles
from pycocotools import mask as mask_utils

import ovis_jax
from ovis_jax._src.masks.rle import encode_dense
from ovis_jax._src.streaming.evaluator import StreamingEvaluator, StreamingState, resize_masks
from ovis_jax.testing import assert_results_equal, synthetic

logging.getLogger("ovis_jax").setLevel(logging.ERROR)

SEEDS = (0, 1, 2)


def _seeds(quick: tuple[int, ...]) -> list:
    """SEEDS, those not in ``quick`` marked slow."""
    return [pytest.param(s, marks=() if s in quick else pytest.mark.slow) for s in SEEDS]


def _decode(seg: dict) -> np.ndarray:
    counts = seg["counts"]
    rle = {"size": seg["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    with warnings.catch_warnings():  # pycocotools' NumPy 2 DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


@functools.cache
def _dataset(seed: int):
    """A random ground truth and dense predictions for it (the random results, decoded).

    Returns ``(gt_dict, gt, masks, scores, labels, valid, skipped)``: masks bool[V, N, F, H, W]
    on the dataset's largest canvas with random garbage outside each video's frames (it must be
    ignored); video ``empty`` keeps no valid prediction and video ``skipped`` is never updated.
    """
    gt_dict, results = synthetic.random_dataset(seed=seed, unknown_categories=True)
    gt = ovis_jax.load_ground_truth(gt_dict)
    videos = gt.videos
    per_video: dict[int, list] = {v.id: [] for v in videos}
    for r in results:
        per_video[r["video_id"]].append(r)
    f = max(v.length for v in videos)
    h = max(v.height for v in videos)
    w = max(v.width for v in videos)
    n = max(1, max(len(x) for x in per_video.values()))
    rng = np.random.default_rng(seed)
    masks = rng.random((len(videos), n, f, h, w)) < 0.3  # garbage, cleared below
    scores = np.zeros((len(videos), n), np.float32)
    labels = np.zeros((len(videos), n), np.int32)
    valid = np.zeros((len(videos), n), bool)
    for i, v in enumerate(videos):
        masks[i, :, : v.length, : v.height, : v.width] = False
        for j, r in enumerate(per_video[v.id]):
            for t, seg in enumerate(r["segmentations"]):
                if seg is not None:
                    masks[i, j, t, : v.height, : v.width] = _decode(seg)
            scores[i, j] = r["score"]
            labels[i, j] = r["category_id"]
            valid[i, j] = True
    skipped = -1
    if len(videos) >= 3:
        empty, skipped = rng.choice(len(videos), size=2, replace=False).tolist()
        valid[empty] = False
        valid[skipped] = False
    return gt_dict, gt, masks, scores, labels, valid, skipped


def _file_results(gt, masks, scores, labels, valid, order) -> list[dict]:
    """The predictions as a results file: videos in ``order``, predictions in index order."""
    out = []
    for i in order:
        v = gt.videos[i]
        for j in np.flatnonzero(valid[i]):
            out.append(
                {
                    "video_id": v.id,
                    "category_id": int(labels[i, j]),
                    "score": float(scores[i, j]),
                    "segmentations": [
                        encode_dense(masks[i, j, t, : v.height, : v.width]) for t in range(v.length)
                    ],
                }
            )
    return out


@functools.cache
def _expected(seed: int) -> ovis_jax.EvalResult:
    _, gt, masks, scores, labels, valid, _ = _dataset(seed)
    order = np.random.default_rng(seed + 100).permutation(len(gt.videos))
    return ovis_jax.evaluate(gt, _file_results(gt, masks, scores, labels, valid, order))


def _assert_same(got: ovis_jax.EvalResult, want: ovis_jax.EvalResult) -> None:
    assert_results_equal(got, want, what="streaming vs file path")
    # A results file also reports exact duplicate tracks; the streaming evaluator does not look.
    file_only = ("exact duplicates of an earlier result",)
    assert got.warnings == tuple(w for w in want.warnings if not any(f in w for f in file_only))


def _batches(ids: list[int], size: int, pad: int = -1):
    """``ids`` in batches of ``size`` (the last one padded with ``pad``)."""
    for k in range(0, len(ids), size):
        chunk = ids[k : k + size]
        yield chunk + [pad] * (size - len(chunk))


def _run(ev, state, seed, positions, batch_size):
    """Updates ``state`` with the videos at ``positions``, ``batch_size`` at a time."""
    _, gt, masks, scores, labels, valid, _ = _dataset(seed)
    for chunk in _batches(list(positions), batch_size):
        rows = [max(p, 0) for p in chunk]
        ids = [gt.videos[p].id if p >= 0 else -1 for p in chunk]
        state = ev.update(state, ids, masks[rows], scores[rows], labels[rows], valid[rows])
    return state


def _order(seed: int) -> list[int]:
    """A random order of the videos to update, without the one never updated."""
    _, gt, *_, skipped = _dataset(seed)
    order = np.random.default_rng(seed + 7).permutation(len(gt.videos)).tolist()
    return [p for p in order if p != skipped]


@pytest.mark.parametrize("seed", _seeds(quick=(0,)))
def test_equal_to_file_path_any_batching(seed):
    _, gt, masks, *_ = _dataset(seed)
    # A max_predictions no other test uses: state shapes not compiled before in this process.
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1] + 5)
    order = _order(seed)
    with count_compiles() as log:
        for batch_size in (1, 3):
            state = _run(ev, ev.init(), seed, order, batch_size)
            _assert_same(ev.compute(state), _expected(seed))
    assert log.count("update_state") == 2  # one compilation per batch shape


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_split_across_evaluators_and_merged(seed):
    gt_dict, gt, masks, *_ = _dataset(seed)
    order = _order(seed)
    half = len(order) // 2
    ev_a = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    # A second evaluator built from the same file (as another process would).
    ev_b = StreamingEvaluator(ovis_jax.load_ground_truth(gt_dict), max_predictions=masks.shape[1])
    state_a = _run(ev_a, ev_a.init(), seed, order[:half], 2)
    state_b = _run(ev_b, ev_b.init(), seed, order[half:], 2)
    _assert_same(ev_a.compute(ev_a.merge(state_a, state_b)), _expected(seed))
    _assert_same(ev_b.compute(ev_b.merge(state_b, state_a)), _expected(seed))
    # As process_allgather stacks them, and a one-process allgather.
    stacked = jax.tree_util.tree_map(lambda *x: np.stack(x), state_a, ev_a.init(), state_b)
    _assert_same(ev_a.compute(ev_a.merge_stacked(stacked)), _expected(seed))
    merged = ev_a.allgather(ev_a.merge(state_a, state_b))
    _assert_same(ev_a.compute(merged), _expected(seed))


def test_state_merge_and_reduce_equal_one_state():
    """Per-shard states merged (``merge``, ``reduce`` of the stacked states, inside jit) are the
    state of one run over every video, leaf by leaf, and compute the file path's numbers."""
    seed = 1
    _, gt, masks, *_ = _dataset(seed)
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    order = _order(seed)
    single = _run(ev, ev.init(), seed, order, 2)
    shards = [_run(ev, ev.init(), seed, order[k::3], 2) for k in range(3)]
    merged = jax.jit(lambda a, b, c: a.merge(b).merge(c))(*shards)
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *shards)
    reduced = jax.jit(StreamingState.reduce)(stacked)
    # Shapes in the legend's letters (ovis_jax._src.legend): Z stacked states.
    dims = chex.Dimensions(Z=3, V=len(gt.videos), N=masks.shape[1], G=ev.num_slots)
    chex.assert_shape(stacked.inter, dims["ZVNG"])
    for state in (merged, reduced, ev.merge_stacked(stacked)):
        chex.assert_shape(state.inter, dims["VNG"])
        chex.assert_shape([state.pred_area, state.score, state.valid], dims["VN"])
        chex.assert_shape([state.updated, state.conflict], dims["V"])
        chex.assert_shape(state.fingerprint, (16,))
        leaves = zip(
            jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(state), strict=True
        )
        for a, b in leaves:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _assert_same(ev.compute(reduced), _expected(seed))
    # A video in two stacked states is flagged by reduce, and compute names it.
    twice = jax.tree_util.tree_map(lambda *x: jnp.stack(x), shards[0], shards[0])
    flagged = jax.jit(StreamingState.reduce)(twice)
    np.testing.assert_array_equal(np.asarray(flagged.conflict), np.asarray(shards[0].updated))
    with pytest.raises(ValueError, match="updated more than once"):
        ev.compute(flagged)


def test_update_fn_inside_user_jit():
    seed = 0
    _, gt, masks, scores, labels, valid, _ = _dataset(seed)
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    traces = []

    @jax.jit
    def step(state, gt_batch, video_pos, masks, scores, labels, valid):
        traces.append(1)
        return ev.update_fn(state, gt_batch, video_pos, masks, scores, labels, valid)

    state = ev.init()
    for chunk in _batches(_order(seed), 2):
        rows = [max(p, 0) for p in chunk]
        ids = [gt.videos[p].id if p >= 0 else -1 for p in chunk]
        pos, gt_batch = ev.prepare(ids)
        state = step(state, gt_batch, pos, masks[rows], scores[rows], labels[rows], valid[rows])
    assert len(traces) == 1
    _assert_same(ev.compute(state), _expected(seed))
    # A video updated twice inside jit is marked, and compute names it.
    pos, gt_batch = ev.prepare([gt.videos[0].id, gt.videos[0].id])
    again = step(state, gt_batch, pos, masks[[0, 0]], scores[[0, 0]], labels[[0, 0]], valid[[0, 0]])
    with pytest.raises(ValueError, match=rf"video\(s\) {gt.videos[0].id} were updated more than"):
        ev.compute(again)


@pytest.mark.slow
def test_float_probabilities_threshold_and_padding_rows():
    seed = 1
    _, gt, masks, scores, labels, valid, _ = _dataset(seed)
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1] + 3)  # N < max_predictions
    rng = np.random.default_rng(0)
    probs = np.where(masks, rng.uniform(0.5, 1.0, masks.shape), rng.uniform(0.0, 0.5, masks.shape))
    probs[masks & (rng.random(masks.shape) < 0.3)] = 0.5  # exactly 0.5 is foreground
    probs = probs.astype(np.float32)
    assert ((probs >= 0.5) == masks).all()
    order = _order(seed)
    s_bool = _run(ev, ev.init(), seed, order, 4)
    s_prob = ev.init()
    for chunk in _batches(order, 4):
        rows = [max(p, 0) for p in chunk]
        ids = [gt.videos[p].id if p >= 0 else -1 for p in chunk]
        s_prob = ev.update(s_prob, ids, probs[rows], scores[rows], labels[rows], valid[rows])
    for a, b in zip(
        jax.tree_util.tree_leaves(s_bool), jax.tree_util.tree_leaves(s_prob), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _assert_same(ev.compute(s_prob), _expected(seed))


def test_checkpoint_halfway_and_restore(tmp_path):
    seed = 0
    gt_dict, gt, masks, *_ = _dataset(seed)
    order = _order(seed)
    half = len(order) // 2
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    state = _run(ev, ev.init(), seed, order[:half], 2)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "half", state)
    ckpt.wait_until_finished()
    # A new evaluator (as after a restart), ground truth loaded again.
    ev2 = StreamingEvaluator(ovis_jax.load_ground_truth(gt_dict), max_predictions=masks.shape[1])
    restored = ev2.restore(tmp_path / "half")
    assert isinstance(restored, StreamingState)
    _assert_same(ev2.compute(_run(ev2, restored, seed, order[half:], 2)), _expected(seed))
    # Restoring into the abstract state also works.
    target = ckpt.restore(tmp_path / "half", ev2.abstract_state())
    _assert_same(ev2.compute(_run(ev2, target, seed, order[half:], 2)), _expected(seed))

    # One item of a CheckpointManager, beside the model's parameters.
    params = {"w": jnp.arange(3.0), "b": jnp.zeros(())}
    with ocp.CheckpointManager(tmp_path / "run") as mgr:
        mgr.save(
            7,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(params), evaluator=ocp.args.StandardSave(state)
            ),
        )
        mgr.wait_until_finished()
        back = mgr.restore(
            7,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore(params),
                evaluator=ocp.args.StandardRestore(ev2.abstract_state()),
            ),
        )
    np.testing.assert_array_equal(back.params["w"], params["w"])
    state3 = _run(ev2, ev2.validate(back.evaluator), seed, order[half:], 2)
    _assert_same(ev2.compute(state3), _expected(seed))


def test_state_of_other_ground_truth_is_refused(tmp_path, tiny):
    _, gt0, masks0, *_ = _dataset(0)
    _, gt1, masks1, *_ = _dataset(1)
    ev0 = StreamingEvaluator(gt0, max_predictions=masks0.shape[1])
    ev1 = StreamingEvaluator(gt1, max_predictions=masks1.shape[1])
    state0 = _run(ev0, ev0.init(), 0, _order(0)[:2], 2)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "s0", state0)
    ckpt.wait_until_finished()
    with pytest.raises(ValueError, match="made for other ground truth"):
        ev1.restore(tmp_path / "s0")
    with pytest.raises(ValueError, match="made for other ground truth"):
        ev1.compute(state0)
    with pytest.raises(ValueError, match="made for other ground truth"):
        ev1.merge(ev1.init(), state0)
    _, _, m1, s1, l1, v1, _ = _dataset(1)
    with pytest.raises(ValueError, match="made for other ground truth"):
        ev1.update(state0, [gt1.videos[0].id], m1[:1], s1[:1], l1[:1], v1[:1])
    # Same ids and sizes, one mask different: a different fingerprint.
    gt_dict, _ = tiny
    ev_a = StreamingEvaluator(ovis_jax.load_ground_truth(gt_dict), max_predictions=2)
    seg = gt_dict["annotations"][0]["segmentations"]
    seg[0] = encode_dense(np.pad(np.ones((4, 4), np.uint8), ((0, 6), (0, 6))))
    ev_b = StreamingEvaluator(ovis_jax.load_ground_truth(gt_dict), max_predictions=2)
    with pytest.raises(ValueError, match="made for other ground truth"):
        ev_b.validate(ev_a.init())
    # Same ground truth, other max_predictions.
    ev_c = StreamingEvaluator(gt0, max_predictions=masks0.shape[1] + 1)
    with pytest.raises(ValueError, match="max_predictions"):
        ev_c.restore(tmp_path / "s0")


def test_double_update_is_an_error():
    seed = 2
    _, gt, masks, scores, labels, valid, _ = _dataset(seed)
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    vid = gt.videos[1].id
    state = ev.update(ev.init(), [vid], masks[1:2], scores[1:2], labels[1:2], valid[1:2])
    # With check=True, update reads the state back and refuses at once.
    with pytest.raises(ValueError, match=f"video {vid} .*already updated"):
        ev.update(state, [vid], masks[1:2], scores[1:2], labels[1:2], valid[1:2], check=True)
    # By default update does not wait for the device: the conflict flag catches it at compute.
    again = ev.update(state, [vid], masks[1:2], scores[1:2], labels[1:2], valid[1:2])
    np.testing.assert_array_equal(np.asarray(again.conflict), np.arange(len(gt.videos)) == 1)
    with pytest.raises(ValueError, match=f"video\\(s\\) {vid} were updated more than once"):
        ev.compute(again)
    with pytest.raises(ValueError, match=f"video {vid} appears twice in this batch"):
        ev.update(ev.init(), [vid, vid], masks[[1, 1]], scores[[1, 1]], labels[[1, 1]])
    with pytest.raises(ValueError, match=f"video\\(s\\) {vid} were updated in both states"):
        ev.merge(state, state)
    # merge_fn (inside jit) marks the conflict; compute names the video.
    with pytest.raises(ValueError, match=f"video\\(s\\) {vid} were updated more than once"):
        ev.compute(jax.jit(ev.merge_fn)(state, state))


def test_bad_inputs_are_named():
    _, gt, masks, scores, labels, valid, _ = _dataset(0)
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    state = ev.init()
    unknown = max(v.id for v in gt.videos) + 1
    with pytest.raises(ValueError, match=f"video_ids\\[0\\] = {unknown}: unknown video id"):
        ev.update(state, [unknown], masks[:1], scores[:1], labels[:1])
    big = max(gt.videos, key=lambda v: v.height)
    i = gt.videos.index(big)
    with pytest.raises(ValueError, match=f"video {big.id} .*more than the masks' canvas"):
        ev.update(state, [big.id], masks[i : i + 1, :, :, : big.height - 1], scores[:1], labels[:1])
    with pytest.raises(ValueError, match="more than max_predictions"):
        small = StreamingEvaluator(gt, max_predictions=1)
        small.update(small.init(), [gt.videos[0].id], masks[:1, :2], scores[:1, :2], labels[:1, :2])
    with pytest.raises(ValueError, match="scores must be"):
        ev.update(state, [gt.videos[0].id], masks[:1], scores[:1, :1], labels[:1])
    with pytest.raises(ValueError, match="pad_video_id"):
        StreamingEvaluator(gt, pad_video_id=gt.videos[0].id)
    bad = scores.copy()
    bad[0, 0] = np.nan
    valid0 = np.ones_like(valid[:1])
    s = ev.update(state, [gt.videos[0].id], masks[:1], bad[:1], labels[:1], valid0)
    with pytest.raises(ValueError, match=f"video {gt.videos[0].id}, prediction 0: score nan"):
        ev.compute(s)


def test_no_predictions_and_x64_unchanged():
    _, gt, masks, scores, labels, valid, _ = _dataset(0)
    x64 = jax.config.jax_enable_x64
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    _assert_same(ev.compute(ev.init()), ovis_jax.evaluate(gt, []))
    state = ev.update(ev.init(), [gt.videos[0].id], masks[:1], scores[:1], labels[:1], valid[:1])
    ev.compute(state)
    assert jax.config.jax_enable_x64 == x64
    assert jnp.zeros(1).dtype == (jnp.float64 if x64 else jnp.float32)
    assert state.inter.dtype == jnp.int32 and state.score.dtype == jnp.float32


def test_resize_masks_matches_jax_image_resize():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 4, 6, 5)).astype(np.float32)
    sizes = np.array([[9, 11], [4, 3], [0, 0]], np.int32)  # up, down, padding row
    out = np.asarray(resize_masks(x, sizes, canvas=(10, 12)))
    assert out.shape == (3, 2, 4, 10, 12) and out.dtype == bool
    for b, (h, w) in enumerate(sizes):
        region = np.zeros((10, 12), bool)
        region[:h, :w] = True
        assert not out[b][..., ~region].any()
        if h == 0:
            continue
        want = np.asarray(jax.image.resize(x[b], (2, 4, h, w), "linear"))
        sure = np.abs(want - 0.5) > 1e-5  # float32 rounding of the scale factors aside
        np.testing.assert_array_equal(out[b, ..., :h, :w][sure], (want >= 0.5)[sure])
    # Logits thresholded at 0 give the probabilities' masks at 0.5 (before resizing).
    same = resize_masks(np.log(x / (1 - x)), sizes, canvas=(10, 12), threshold=0.0)
    ident = np.array([[6, 5]] * 3)
    np.testing.assert_array_equal(
        np.asarray(resize_masks(np.log(x / (1 - x)), ident, canvas=(6, 5), threshold=0.0)),
        x >= 0.5,
    )
    assert same.shape == out.shape


_CHILD = textwrap.dedent(
    """
    import json, re, sys
    import numpy as np
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import ovis_jax
    from ovis_jax._src.streaming.evaluator import StreamingEvaluator

    assert jax.device_count() == 4, jax.devices()
    d = np.load(sys.argv[2])
    gt = ovis_jax.load_ground_truth(sys.argv[1])
    ev = StreamingEvaluator(gt, max_predictions=d["masks"].shape[1])
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    shard = NamedSharding(mesh, P("batch"))
    state = ev.init()
    ids = d["ids"]
    biggest = 0
    for k in range(0, ids.shape[0], 4):
        rows = slice(k, k + 4)
        names = ("masks", "scores", "labels", "valid")
        args = [jax.device_put(d[name][rows], shard) for name in names]
        assert len(args[0].sharding.device_set) == 4
        pos, gtb = ev.prepare(ids[rows])
        gtb = type(gtb)(*(jax.device_put(x, shard) for x in gtb))
        lowered = ev.update_fn.lower(state, gtb, jax.device_put(pos, shard), *args)
        hlo = lowered.compile().as_text()
        for m in re.finditer(r"= [a-z0-9]+\\[([0-9,]*)\\][^ ]* all-gather", hlo):
            biggest = max(biggest, int(np.prod([int(s) for s in m.group(1).split(",") if s])))
        state = ev.update(state, ids[rows], *args)
    per_device_masks = d["masks"][:1].size
    np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in vars(jax.device_get(state)).items()})
    print(json.dumps({"devices": jax.device_count(), "largest_all_gather": biggest,
                      "per_device_masks": per_device_masks}))
    """
)


@pytest.mark.slow
def test_sharded_over_four_devices_subprocess(tmp_path):
    seed = 2
    gt_dict, gt, masks, scores, labels, valid, _ = _dataset(seed)
    order = _order(seed)
    ids = [gt.videos[p].id for p in order]
    rows = list(order)
    while len(ids) % 4:
        ids.append(-1)
        rows.append(0)
    (tmp_path / "gt.json").write_text(json.dumps(gt_dict))
    np.savez(
        tmp_path / "pred.npz",
        ids=np.array(ids),
        masks=masks[rows],
        scores=scores[rows],
        labels=labels[rows],
        valid=valid[rows],
    )
    # Four host CPU devices, on the CPU platform even where JAX's default is a GPU.
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(tmp_path / "gt.json"),
            str(tmp_path / "pred.npz"),
            str(tmp_path / "state.npz"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["devices"] == 4
    # Only per-video results travel between devices, never the masks.
    assert 0 < info["largest_all_gather"] < info["per_device_masks"]
    ev = StreamingEvaluator(gt, max_predictions=masks.shape[1])
    state = ev.validate(dict(np.load(tmp_path / "state.npz")))
    _assert_same(ev.compute(state), _expected(seed))
