"""supercourse.bench: the harness runs and writes complete JSON; the fast trainer learns what the baseline learns.

Also checks the pieces of the fast path that the benchmark relies on: seeded
determinism, data that do not depend on the thread count, the sparse sampler's
distribution and the direct fused AdamW.
"""

from __future__ import annotations

import argparse
import copy
import json
import math

import pytest
import torch

import supercourse
from supercourse import ToyModel, bench
from supercourse import fast as fast_mod
from supercourse.metrics import antipodal_pairs, n_represented
from supercourse.training import FusedAdamW

TRAINER_FIELDS = (
    "steps",
    "rounds",
    "steps_per_s",
    "instance_steps_per_s",
    "wall_s",
    "steps_per_s_rounds",
    "peak_mem_bytes",
    "peak_mem_method",
)


def _check_results(data: dict, device: str) -> None:
    assert data["device"] == device and data["quick"] is True
    assert data["targets"] == []  # a quick run is not a measurement
    expected = {(w.name, k) for w in bench.WORKLOADS.values() for k in w.quick_instances}
    assert {(r["workload"], r["n_instances"]) for r in data["results"]} == expected
    assert "load average" in bench.load_line(data) and data["load_processes"] == 0
    for r in data["results"]:
        w = bench.WORKLOADS[r["workload"]]
        assert r["config"]["n_instances"] == r["n_instances"] and r["config"]["batch_size"] == w.batch_size
        assert r["path"] in ("fast", "analytic", "autograd")
        floor = r["floor"]
        assert floor["flops"] > 0 and floor["seconds"] > 0 and floor["gflops_per_s"] > 0
        for trainer in ("baseline", "fast"):
            m = r[trainer]
            assert set(TRAINER_FIELDS) <= set(m), (r["workload"], trainer, sorted(m))
            assert m["steps"] == 2 and m["rounds"] == 1
            assert m["steps_per_s"] > 0 and math.isfinite(m["steps_per_s"])
            assert m["instance_steps_per_s"] == pytest.approx(m["steps_per_s"] * r["n_instances"])
            assert m["wall_s"] > 0 and m["peak_mem_bytes"] >= 0
            assert m["floor_fraction"] == pytest.approx(floor["seconds"] * m["steps_per_s"])
        assert r["speedup"] == pytest.approx(r["fast"]["steps_per_s"] / r["baseline"]["steps_per_s"])


def test_quick_bench_writes_json_with_every_workload(tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    _check_results(json.loads(out.read_text()), "cpu")


def test_bench_is_a_supercourse_subcommand(tmp_path):
    parser = argparse.ArgumentParser(prog="supercourse")
    bench.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick", "--workloads", "w1", "--out", str(tmp_path / "b.json")])
    assert args.func is bench.run and args.quick and args.device == "auto"
    args.quiet = True
    assert args.func(args) == 0
    data = json.loads((tmp_path / "b.json").read_text())
    assert [r["workload"] for r in data["results"]] == ["W1"]


def test_unknown_workload_is_an_error(capsys):
    assert bench.main(["--quick", "--workloads", "W9", "--quiet"]) == 2
    assert "W9" in capsys.readouterr().out


def test_workloads_match_the_issue():
    shapes = {n: (w.n_features, w.n_hidden, w.instances) for n, w in bench.WORKLOADS.items()}
    assert shapes["W1"] == (20, 5, (7,))
    assert shapes["W2"] == (400, 30, (20,))
    assert shapes["W3"] == (2, 1, (4000,))
    assert shapes["W4"][:2] == (20, 5) and shapes["W4"][2][0] == 1 and shapes["W4"][2][-1] == 10_000
    m = bench.make_model("W3")
    assert m.importance.shape == (4000, 2) and (m.importance[:, 0] == 1).all()
    assert m.feature_probability.min() == pytest.approx(0.01) and m.feature_probability.max() == pytest.approx(1.0)


def test_lesson_workloads_are_the_lessons_models_at_their_sizes():
    from supercourse.experiments import absolute_value, collapse, privileged_basis
    from supercourse.experiments import sparse_autoencoders as sae_exp

    w = bench.WORKLOADS
    assert (w["G1"].n_features, w["G1"].n_hidden, w["G1"].instances, w["G1"].batch_size) == (6, 3, (8,), 1024)
    assert w["L06"].instances == (len(collapse.DENSITIES) * collapse.RESTARTS,) and w["L06"].lr == collapse.LR
    assert w["L08"].instances == (len(privileged_basis.DENSITIES) * privileged_basis.RESTARTS,)
    assert (w["L08A"].n_features, w["L08A"].n_hidden) == absolute_value.SIZES["cpu"]
    assert (w["L09"].n_features, w["L09"].n_hidden) == (sae_exp.D_IN, sae_exp.dict_size(max(sae_exp.RATIOS)))
    paths = {name: supercourse.training.gradient_path(bench.make_model(name)) for name in ("G1", "L06", "L08", "L08F",
                                                                                          "L08A", "L09")}
    assert paths == {"G1": "autograd", "L06": "analytic", "L08": "analytic", "L08F": "autograd", "L08A": "analytic",
                     "L09": "analytic"}
    for name in paths:  # the sizes the table shows are the model's
        model, w = bench.make_model(name), bench.WORKLOADS[name]
        sizes = (model.d_in, model.d_sae) if w.kind == "sae" else (model.n_features, model.n_hidden)
        assert (*sizes, model.n_instances) == (w.n_features, w.n_hidden, w.instances[0]), name
    with pytest.raises(ValueError, match="L08 runs at 144 instances only"):
        bench.make_model("L08", n_instances=3)


@pytest.mark.parametrize("name", ["G1", "L06", "L08", "L08F", "L08A", "L09"])
def test_both_trainers_of_a_lesson_workload_compute_the_same_training(name):
    # The general path and the hand-written gradients see the baseline's batches: the benchmark times two
    # implementations of one computation (equal to float32 rounding after 20 steps).
    w = bench.WORKLOADS[name]
    base, ours = bench.make_model(name, seed=1), bench.make_model(name, seed=1)
    bench._trainer("baseline", w)(base, 20)
    bench._trainer("fast", w)(ours, 20)
    for a, b in zip(ours.parameters(), base.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_matmul_floor_counts_the_steps_products():
    w = bench.WORKLOADS["W1"]
    floor = bench.matmul_floor(w, 7, torch.device("cpu"), budget_s=0.01)
    assert floor["flops"] == 10 * 7 * 5 * 20 * 1024  # five products of 2 K m n B flops
    assert floor["seconds"] > 0 and floor["threads"] >= 1
    assert floor["gflops_per_s"] == pytest.approx(floor["flops"] / floor["seconds"] / 1e9)
    sae_w = bench.WORKLOADS["L09"]
    assert bench.matmul_floor(sae_w, 5, torch.device("cpu"), budget_s=0.01)["flops"] == 10 * 5 * 256 * 32 * 256


def test_busy_processes_run_beside_the_block_and_stop_after():
    with bench.busy_processes(1) as procs:
        assert len(procs) == 1 and procs[0].poll() is None
    assert procs[0].poll() is not None
    out = {"cpu_count": 2, "loadavg_before": [0.5, 0, 0], "loadavg_after": [1.5, 0, 0], "load_processes": 1}
    assert bench.load_line(out) == (
        "load average (1 min) 0.50 before, 1.50 after (2 cores; 1 CPU-bound process beside the benchmark)"
    )


def test_baseline_is_the_plain_loop():
    # the baseline trains: its loss falls, and it leaves autograd grads behind
    m = bench.make_model("W1", seed=0)
    first = bench.baseline_train(copy.deepcopy(m), 1, lr=1e-2)
    last = bench.baseline_train(m, 300, lr=1e-2)
    assert last.shape == (7,) and (last[:3] < first[:3]).all()
    assert m.W.grad is not None


# W1 trained by both trainers from the same init and seed: 6000 steps at lr 2e-3
# (the paper's recipe is 10,000 at 1e-3), about 15 s on a quiet CPU. The two
# trainers draw different data, so they can only agree statistically.
W1_STEPS, W1_LR, W1_SEED = 6000, 2e-3, 1
DENSE_ENOUGH = 0.03
"""Instances of at least this density (1, 0.3, 0.1, 0.03) settle on one geometry:
5, 7, 10 and 10 features represented, 0, 2, 5 and 5 antipodal pairs, whichever
the trainer and the seed. The sparser ones (1%, 0.3%, 0.1%) vary from seed to
seed even with one trainer: the paper reports 11-12, 12-13 and 13-15 features."""
LOSS_RTOL_DENSE = 0.02
LOSS_RTOL_SPARSE = 0.5
N_REPRESENTED_TOL_SPARSE = 3


@pytest.fixture(scope="module")
def w1_pair():
    base = bench.make_model("W1", seed=0)
    slow, quick = copy.deepcopy(base), copy.deepcopy(base)
    bench.baseline_train(slow, W1_STEPS, lr=W1_LR, seed=W1_SEED)
    supercourse.train(quick, steps=W1_STEPS, lr=W1_LR, seed=W1_SEED, progress=False, device="cpu")
    x = base.generate_batch(100_000, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        losses = (slow.per_instance_loss(x, slow(x)), quick.per_instance_loss(x, quick(x)))
    return base, slow, quick, losses


def test_fast_and_baseline_reach_the_same_loss_on_w1(w1_pair):
    base, slow, quick, (l_slow, l_fast) = w1_pair
    dense = base.feature_probability[:, 0] >= DENSE_ENOUGH
    rel = (l_fast - l_slow).abs() / l_slow
    assert (rel[dense] <= LOSS_RTOL_DENSE).all(), (l_slow, l_fast)
    assert (rel[~dense] <= LOSS_RTOL_SPARSE).all(), (l_slow, l_fast)


def test_fast_and_baseline_learn_the_same_geometry_on_w1(w1_pair):
    base, slow, quick, _ = w1_pair
    dense = (base.feature_probability[:, 0] >= DENSE_ENOUGH).tolist()
    n_slow, n_fast = n_represented(slow.W), n_represented(quick.W)
    pairs_slow, pairs_fast = antipodal_pairs(slow.W), antipodal_pairs(quick.W)
    for k, is_dense in enumerate(dense):
        if is_dense:
            assert n_fast[k] == n_slow[k], (k, n_slow, n_fast)
            assert sorted(pairs_fast[k]) == sorted(pairs_slow[k]), (k, pairs_slow[k], pairs_fast[k])
        else:
            assert abs(int(n_fast[k]) - int(n_slow[k])) <= N_REPRESENTED_TOL_SPARSE, (k, n_slow, n_fast)
    # and superposition did happen: the ReLU model packs more than m = 5 features when sparse
    assert n_fast.tolist()[:4] == [5, 7, 10, 10] and [len(p) for p in pairs_fast[:4]] == [0, 2, 5, 5]


def _train_w(seed: int, model: ToyModel, steps: int = 30):
    h = supercourse.train(model, steps=steps, seed=seed, progress=False, device="cpu", log_every=10)
    return model.W.detach().clone(), model.b_final.detach().clone(), h.losses


def test_seeded_training_is_deterministic_and_seeds_matter():
    make = lambda: bench.make_model("W1", seed=3)  # noqa: E731
    a, b, c = _train_w(7, make()), _train_w(7, make()), _train_w(8, make())
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_data_do_not_depend_on_the_thread_count(monkeypatch):
    # Several blocks (each with its own stream), dense and sparse instances.
    monkeypatch.setattr(fast_mod, "BLOCK_ENTRIES", 3 * 20 * 256)
    p = torch.tensor([1.0, 0.5, 0.02, 0.004, 1.0, 0.001, 0.3])
    runs = []
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m = ToyModel(20, 5, n_instances=7, feature_probability=p, seed=0)
            h = supercourse.train(m, steps=20, batch_size=256, seed=5, progress=False, device="cpu")
            step = fast_mod.ToyModelStep(m, 256, torch.Generator().manual_seed(1), workers=threads)
            assert len(step.blocks) == 3
            step(False)
            runs.append((m.W.detach().clone(), h.losses, step.x.clone()))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(runs[0][2], runs[1][2])
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert torch.get_num_threads() == old


@pytest.mark.parametrize("short_rows", [False, True], ids=["slots", "continued-rows"])
def test_sparse_sampler_draws_the_right_distribution(monkeypatch, short_rows):
    if short_rows:  # too few slots: most rows must continue their gap sequences
        monkeypatch.setattr(fast_mod._NumpySampler, "SLOT_SIGMAS", -3.0)
        monkeypatch.setattr(fast_mod._NumpySampler, "SLOT_EXTRA", 0.0)
    p = torch.tensor([[0.001, 0.01, 0.03, 0.05], [0.002, 0.0, 0.02, 0.004]])
    model = ToyModel(4, 2, n_instances=2, feature_probability=p, seed=0)
    B, draws = 1024, 1500
    step = fast_mod.ToyModelStep(model, B, torch.Generator().manual_seed(1))
    assert step._samplers[0].sparse_runs == [(0, 2)] and not step._samplers[0].dense_runs
    active = torch.zeros(2, 4, dtype=torch.float64)
    per_position = torch.zeros(B, dtype=torch.float64)
    values = []
    for _ in range(draws):
        step(False)
        x = step.x
        nz = x != 0
        active += nz.double().sum(1)
        per_position += nz.double().sum((0, 2))
        values.append(x[nz].double())
    density = active / (B * draws)
    se = (p.double() * (1 - p.double()) / (B * draws)).sqrt()
    assert ((density - p).abs() <= 5 * se).all(), (density, p)
    v = torch.cat(values)
    assert (v > 0).all() and (v < 1).all()
    assert abs(v.mean().item() - 0.5) < 5 * (1 / 12 / v.numel()) ** 0.5
    assert abs(v.var().item() - 1 / 12) < 0.004
    # active entries fall anywhere in the batch
    bins = per_position.view(8, -1).sum(1)
    assert ((bins / bins.mean() - 1).abs() < 0.05).all(), bins


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_sparse_products_give_the_autograd_gradient(dtype, tol):
    # W2-like blocks below 4% density: h = W x and dh x^T from the active entries only
    p = torch.tensor([0.01, 0.03, 0.002, 0.2])
    model = ToyModel(400, 30, n_instances=4, feature_probability=p, importance=0.99 ** torch.arange(400.0), seed=0)
    model = model.to(dtype)
    with torch.no_grad():
        model.b_final.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(1))
    step = fast_mod.ToyModelStep(model, 512, torch.Generator().manual_seed(2))
    assert step.blocks == [(0, 2), (2, 4)] and step._sparse_products == [True, False]
    for _ in range(2):
        per = step(True)
        x = step.x.transpose(0, 1).clone()
        W = model.W.detach().clone().requires_grad_()
        b = model.b_final.detach().clone().requires_grad_()
        out = torch.relu(torch.einsum("bih,ihf->bif", torch.einsum("bif,ihf->bih", x, W), W) + b)
        loss = (model.importance * (x - out) ** 2).mean(dim=(0, 2))
        gW, gb = torch.autograd.grad(loss.sum(), [W, b])
        torch.testing.assert_close(model.W.grad, gW, rtol=tol, atol=tol * 1e-2)
        torch.testing.assert_close(model.b_final.grad, gb, rtol=tol, atol=tol * 1e-2)
        torch.testing.assert_close(per, loss.detach(), rtol=tol, atol=tol * 1e-2)


def test_dense_and_sparse_instances_are_drawn_by_their_own_paths():
    p = torch.tensor([1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001])
    step = fast_mod.ToyModelStep(ToyModel(20, 5, n_instances=7, feature_probability=p), 1024, None)
    assert step.blocks == [(0, 4), (4, 7)]  # two cores share even W1
    first, second = step._samplers
    assert first.dense_runs == [(0, 3)] and first.sparse_runs == [(3, 4)]  # block-local instances
    assert second.dense_runs == [] and second.sparse_runs == [(0, 3)]
    torch_step = fast_mod.ToyModelStep(ToyModel(20, 5, n_instances=7, feature_probability=p), 64, None, numpy_rng=False)
    assert not torch_step._samplers
    torch_step(False)
    density = (torch_step.x != 0).double().mean((1, 2))
    assert density[0] > 0.99 and density[-1] < 0.05


def test_fused_adamw_is_torch_adamw_fused():
    torch.manual_seed(0)
    W = torch.randn(7, 5, 20, requires_grad=True)
    b = torch.randn(7, 20, requires_grad=True)
    W2, b2 = (t.detach().clone().requires_grad_() for t in (W, b))
    ours = FusedAdamW([W, b], weight_decay=0.01)
    theirs = torch.optim.AdamW([W2, b2], lr=1e-3, weight_decay=0.01, fused=True)
    for i in range(20):
        gW, gb = torch.randn_like(W), torch.randn_like(b)
        W.grad, b.grad, W2.grad, b2.grad = gW, gb, gW.clone(), gb.clone()
        lr = 1e-3 * (1 - i / 20)
        ours.step(lr)
        theirs.param_groups[0]["lr"] = lr
        theirs.step()
    assert torch.equal(W, W2) and torch.equal(b, b2)


def test_train_restores_the_thread_count():
    old = torch.get_num_threads()
    supercourse.train(bench.make_model("W1"), steps=3, progress=False, device="cpu")
    assert torch.get_num_threads() == old


class _EagerGraph:
    """Stands in for a CUDA graph on the CPU: replay runs the captured chunk eagerly."""

    def __init__(self, graphed) -> None:
        self.graphed = graphed
        self.replays = 0

    def replay(self) -> None:
        g = self.graphed
        for i in range(g.chunk):
            g.step_fn(False)
            g.fused.step(g.lr_buf[i])
        self.replays += 1


def test_graphed_chunks_train_like_eager_steps(monkeypatch):
    """The CUDA-graph schedule (chunks between logged steps, lr per step from a
    device tensor, eager warm-up and logging steps), checked on the CPU with a
    graph that replays eagerly."""
    from supercourse import training

    graphs = []

    def fake_capture(self):
        self.graph = _EagerGraph(self)
        graphs.append(self.graph)

    kw = dict(steps=300, batch_size=64, lr=1e-2, lr_schedule="cosine", seed=3, progress=False, device="cpu", log_every=25)
    eager = bench.make_model("W1", seed=0)
    h_eager = supercourse.train(eager, **kw)
    monkeypatch.setattr(training, "_cuda_graphs_wanted", lambda device: True)
    monkeypatch.setattr(training._GraphedSteps, "_capture", fake_capture)
    graphed = bench.make_model("W1", seed=0)
    h_graphed = supercourse.train(graphed, **kw)
    assert len(graphs) == 1 and graphs[0].replays > 5
    torch.testing.assert_close(graphed.W, eager.W, rtol=1e-5, atol=1e-6)
    assert torch.equal(h_graphed.steps, h_eager.steps)
    torch.testing.assert_close(h_graphed.losses, h_eager.losses, rtol=1e-4, atol=1e-7)


def test_failed_graph_capture_falls_back_to_eager_training(monkeypatch):
    from supercourse import training

    def broken_capture(self):
        raise RuntimeError("capture is not supported here")

    kw = dict(steps=60, batch_size=64, seed=3, progress=False, device="cpu", log_every=20)
    eager = bench.make_model("W1", seed=0)
    supercourse.train(eager, **kw)
    monkeypatch.setattr(training, "_cuda_graphs_wanted", lambda device: True)
    monkeypatch.setattr(training._GraphedSteps, "_capture", broken_capture)
    fallback = bench.make_model("W1", seed=0)
    with pytest.warns(UserWarning, match="CUDA graph capture failed"):
        supercourse.train(fallback, **kw)
    assert torch.equal(fallback.W, eager.W)


@pytest.mark.cuda
def test_quick_bench_on_cuda(tmp_path):
    out = tmp_path / "bench-cuda.json"
    assert bench.main(["--quick", "--device", "cuda", "--out", str(out), "--quiet"]) == 0
    _check_results(json.loads(out.read_text()), "cuda")


@pytest.mark.cuda
def test_fast_trainer_on_cuda_matches_cpu_statistics():
    # same init, same recipe, CUDA graphs on: per-instance loss close to the CPU run's
    base = bench.make_model("W1", seed=0)
    cpu, gpu = copy.deepcopy(base), copy.deepcopy(base)
    supercourse.train(cpu, steps=1500, lr=1e-2, seed=1, progress=False, device="cpu")
    supercourse.train(gpu, steps=1500, lr=1e-2, seed=1, progress=False, device="cuda")
    x = base.generate_batch(100_000, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        l_cpu = cpu.per_instance_loss(x, cpu(x))
        gpu = gpu.cpu()
        l_gpu = gpu.per_instance_loss(x, gpu(x))
    dense = base.feature_probability[:, 0] >= DENSE_ENOUGH
    assert torch.allclose(l_gpu[dense], l_cpu[dense], rtol=0.05)
