"""Sparse autoencoders recover superposed features: a sweep over the L1 coefficient and the dictionary size.

Dictionary learning (Bricken et al. 2023) on data whose features are known:

* **Known features** (:func:`supercourse.sae.toy_features`): 64 random unit
  directions in 32 dimensions, feature ``i`` active with probability
  ``∝ 0.99^i`` (3 active on average), values uniform on [0, 1]. L1 SAEs for
  every L1 coefficient in :data:`L1_COEFFS` and dictionary size in
  :data:`RATIOS` (times the 64 features), and TopK SAEs with ``k = 3`` (the
  true L0). Each dictionary size is one batched :class:`SparseAutoencoder`
  whose instances are the L1 coefficients. Adam at 1e-3, batch 256, 4,000
  steps, decoder columns renormalised after every step, no resampling (so the
  dead latents are counted as training leaves them).
* **The course's toy models**: an SAE with 5 latents on the hidden layer of a
  trained n=5, m=2 pentagon, and one with 2n latents on a larger model in
  superposition (n=20, m=10, density 0.05). The "true features" are the
  model's own columns ``W_i``; several SAE restarts are trained side by side
  and the one with the lowest loss is kept (not the best recovery: that would
  use the answer).

The measured numbers are in ``summary.json`` of ``supercourse reproduce sae``
(``table`` for the sweep and TopK, ``pentagon``, ``large`` and ``resampling``);
lesson 09 quotes the seed-0 run, and ``tests/test_experiment_sae.py`` holds the
lesson's prose to a fresh run and asserts the headlines across seeds 0 and 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import sae as sae_lib
from .. import sae_plots
from ..model import ToyModel
from ..training import History, train
from ._common import ExperimentResult, SummaryRow, best_of_restarts, save_figure, summarize
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

NAME = "sae"
DESCRIPTION = "sparse autoencoders on known superposed features: recovery vs L1 and dictionary size, TopK, toy models"

# Known features
D_IN = 32
N_TRUE = 64
EXPECTED_L0 = 3.0
DECAY = 0.99
# SAE recipe
SAE_STEPS = 4000
BATCH_SIZE = 256
LR = 1e-3
L1_COEFFS: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1)
RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
"""Dictionary size / number of true features."""
TOPK_K = 3
TOPK_RATIOS: tuple[float, ...] = (1.0, 2.0)
EVAL_SAMPLES = 16_384
"""Fresh inputs on which dead latents, L0 and unexplained variance are measured."""
THRESHOLDS = (0.9, 0.99)

# Resampling dead latents (lesson 09, section 8): half of a 2x dictionary starts dead
RESAMPLE_EVERY = 500
RESAMPLE_SEED = 5
"""The SAE's seed in the resampling demonstration (its data: :func:`features` of the study's seed)."""
DEAD_START_BIAS = -10.0
"""The encoder bias that makes the second half of the dictionary dead from step 0."""

# The course's toy models
TOY_STEPS = 10_000
"""The toy models' training (the paper's recipe); a run with ``steps`` SAE steps trains them ``steps * TOY_STEPS / SAE_STEPS``."""
DENSITY = 0.05
PENTAGON_SIZE = (5, 2)
LARGE_SIZE = (20, 10)
DENSITIES = (DENSITY,)
"""The larger toy model's density (one instance; :func:`make_model`)."""
TOY_RESTARTS = 4
TOY_L1 = 0.01
TOY_SAE_RESTARTS = 8
TOY_DATA = 65_536
"""Hidden activations collected from each toy model for its SAE."""
DEFAULT_STEPS = SAE_STEPS
DEFAULT_SEED = 0


def dict_size(ratio: float) -> int:
    """Number of latents of a dictionary ``ratio`` times the number of true features."""
    return max(1, round(ratio * N_TRUE))


def features(seed: int = DEFAULT_SEED) -> sae_lib.ToyFeatures:
    """The known features of seed ``seed`` (:func:`supercourse.sae.toy_features`)."""
    return sae_lib.toy_features(D_IN, N_TRUE, EXPECTED_L0, DECAY, seed=seed)


@dataclass
class Measured:
    """Metrics of every instance of one SAE, each ``(n_instances,)``."""

    mmcs: torch.Tensor
    recovered_90: torch.Tensor
    recovered_99: torch.Tensor
    dead: torch.Tensor
    dead_fraction: torch.Tensor
    l0: torch.Tensor
    fvu: torch.Tensor

    def row(self, i: int) -> dict:
        return {k: (int(v[i]) if k == "dead" else float(v[i])) for k, v in self.__dict__.items()}


@torch.no_grad()
def measure(sae: sae_lib.SparseAutoencoder, true_features: torch.Tensor, h: torch.Tensor) -> Measured:
    """Recovery of ``true_features (d_in, n)`` or ``(n_instances, d_in, n)`` and the SAE's behaviour on ``h (batch, 1 or n_instances, d_in)``."""
    h = h.expand(h.shape[0], sae.n_instances, sae.d_in)
    h_hat, f, _ = sae(h)
    mask = sae.latent_mask
    W_d = sae.W_d.detach()
    dead = sae_lib.dead_latents(f, mask).sum(dim=1)
    fvu = (h - h_hat).square().sum(dim=(0, 2)) / (h - h.mean(dim=0)).square().sum(dim=(0, 2))
    return Measured(
        mmcs=sae_lib.mmcs(true_features, W_d, mask),
        recovered_90=sae_lib.fraction_recovered(true_features, W_d, 0.9, mask),
        recovered_99=sae_lib.fraction_recovered(true_features, W_d, 0.99, mask),
        dead=dead,
        dead_fraction=dead / mask.sum(dim=1),
        l0=(f > 0).float().sum(dim=2).mean(dim=0),
        fvu=fvu,
    )


def train_sweep(
    seed: int = DEFAULT_SEED,
    l1_coeffs: tuple[float, ...] = L1_COEFFS,
    ratios: tuple[float, ...] = RATIOS,
    steps: int = SAE_STEPS,
    device: str | torch.device = "cpu",
    k: int | None = None,
    progress: bool = True,
) -> dict[float, sae_lib.SparseAutoencoder]:
    """One batched SAE per dictionary size (instances: the L1 coefficients), trained on :func:`features`.

    With ``k``, TopK SAEs instead (one instance each; ``l1_coeffs`` ignored).
    Returns ``{ratio: trained SparseAutoencoder}`` on the CPU.
    """
    data = features(seed)
    data.features, data.probability = data.features.to(device), data.probability.to(device)
    out = {}
    for j, ratio in enumerate(ratios):
        n_inst = 1 if k is not None else len(l1_coeffs)
        sae = sae_lib.SparseAutoencoder(
            D_IN, dict_size(ratio), n_inst, l1_coeff=torch.tensor(l1_coeffs if k is None else [0.0]), k=k,
            seed=seed * 1000 + j,
        ).to(device)
        sae_lib.train_sae(sae, data.sample, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed * 1000 + j,
                          progress=progress)
        out[ratio] = sae.cpu()
    return out


def eval_batch(seed: int = DEFAULT_SEED) -> torch.Tensor:
    """``(EVAL_SAMPLES, 1, D_IN)`` fresh inputs of :func:`features`, from their own stream."""
    return features(seed).sample(EVAL_SAMPLES, torch.Generator().manual_seed(10_000 + seed))


def resampling_study(seed: int = DEFAULT_SEED, steps: int = SAE_STEPS, progress: bool = True) -> dict[str, dict]:
    """A 2x, lambda = 0.01 SAE whose second half of latents starts dead, trained without and with resampling.

    Exactly lesson 09's demonstration: seed :data:`RESAMPLE_SEED`, encoder biases of the
    latents 64-127 at :data:`DEAD_START_BIAS`, :func:`supercourse.sae.train_sae` with
    ``resample_every`` ``None`` and :data:`RESAMPLE_EVERY`. Returns ``{"none" | "500":
    {"dead", "resampled", "mmcs", "recovered_90", ...}}`` measured on :func:`eval_batch`.
    """
    data = features(seed)
    h = eval_batch(seed)
    d_sae = dict_size(2.0)
    out = {}
    for every in (None, RESAMPLE_EVERY):
        model = sae_lib.SparseAutoencoder(D_IN, d_sae, 1, l1_coeff=0.01, seed=RESAMPLE_SEED)
        with torch.no_grad():
            model.b_e[:, d_sae // 2:] = DEAD_START_BIAS
        history = sae_lib.train_sae(model, data.sample, steps=steps, seed=RESAMPLE_SEED, resample_every=every,
                                    progress=progress)
        row = measure(model, data.features, h).row(0)
        row["resampled"] = int(history.resampled[0])
        out["none" if every is None else str(every)] = row
    return out


# --------------------------------------------------------------------------- the course's toy models


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED, restarts: int = 1) -> ToyModel:
    """The larger toy model in superposition (n=20, m=10, density 0.05, equal importance), untrained.

    Trained, it represents all 20 features, two per dimension. (A more crowded n=40, m=10 model
    represents all 40, and an SAE with 80 latents then recovers its columns only to MMCS about 0.76.)
    """
    n, m = LARGE_SIZE
    return ToyModel(n, m, n_instances=restarts, feature_probability=DENSITY, importance=1.0, activation=activation, seed=seed)


def make_pentagon(seed: int | None = DEFAULT_SEED, restarts: int = 1) -> ToyModel:
    """The n=5, m=2 toy model at density 0.05 with equal importance (a pentagon once trained), untrained."""
    n, m = PENTAGON_SIZE
    return ToyModel(n, m, n_instances=restarts, feature_probability=DENSITY, importance=1.0, seed=seed)


def summary(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One row per instance of a toy model (:func:`supercourse.experiments.summarize`)."""
    return summarize(model, history)


def train_toy(model: ToyModel, seed: int, device: str | torch.device = "cpu", steps: int = TOY_STEPS) -> ToyModel:
    """Train ``model``'s restarts with the paper's recipe and keep the lowest-loss one (one instance, on the CPU)."""
    restarts = model.n_instances
    train(model, steps=steps, seed=seed, device=device, progress=False)
    best, _, _ = best_of_restarts(model.cpu(), restarts, seed=seed)
    return best


@dataclass
class ToySAE:
    """An SAE on a toy model's hidden layer.

    Attributes:
        W: ``(m, n)`` the toy model's weights (its features are the columns); ``b``: ``(n,)`` its bias.
        represented: ``(n,)`` bool, features with ``||W_i|| > 0.5`` (the ones an SAE can find).
        sae: the trained SAE, ``TOY_SAE_RESTARTS`` instances.
        kept: the instance with the lowest final loss.
        max_cos: ``(n,)`` each feature's best cosine with the kept SAE's decoder.
    """

    W: torch.Tensor
    b: torch.Tensor
    represented: torch.Tensor
    sae: sae_lib.SparseAutoencoder
    kept: int
    max_cos: torch.Tensor

    @property
    def mmcs(self) -> float:
        """MMCS over the represented features."""
        return float(self.max_cos[self.represented].mean())

    @property
    def angles_degrees(self) -> torch.Tensor:
        """``(n_represented,)`` the angle in degrees between each represented feature and its nearest latent (kept SAE)."""
        return torch.rad2deg(torch.arccos(self.max_cos[self.represented].clamp(-1.0, 1.0)))

    @property
    def all_mmcs(self) -> torch.Tensor:
        """``(restarts,)`` MMCS of every restart over the represented features."""
        return sae_lib.max_cosines(self.W[:, self.represented], self.sae.W_d.detach()).mean(dim=1)


def sae_on_toy_model(
    model: ToyModel, d_sae: int, seed: int, l1_coeff: float = TOY_L1, steps: int = SAE_STEPS,
    restarts: int = TOY_SAE_RESTARTS, device: str | torch.device = "cpu", progress: bool = True,
) -> ToySAE:
    """Collect ``TOY_DATA`` hidden activations of a trained one-instance ``model`` and fit ``restarts`` SAEs to them."""
    gen = torch.Generator().manual_seed(seed + 77)
    x = model.generate_batch(TOY_DATA, generator=gen)
    W = model.W.detach()[0]
    h = sae_lib.hidden_dataset(model.W.detach(), x)  # (TOY_DATA, 1, m)
    sae = sae_lib.SparseAutoencoder(model.n_hidden, d_sae, restarts, l1_coeff=l1_coeff, seed=seed).to(device)
    history = sae_lib.train_sae(sae, h.to(device), steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed,
                                progress=progress)
    sae = sae.cpu()
    with torch.no_grad():
        _, _, loss = sae(h.expand(-1, restarts, -1))
    kept = int(loss.argmin())
    represented = W.norm(dim=0) > 0.5
    max_cos = sae_lib.max_cosines(W, sae.W_d.detach()[kept : kept + 1])[0]
    del history
    return ToySAE(W=W, b=model.b_final.detach()[0], represented=represented, sae=sae, kept=kept, max_cos=max_cos)


# --------------------------------------------------------------------------- the whole study


@dataclass
class Study:
    """Everything :func:`run_study` trained and measured."""

    seed: int
    features: torch.Tensor
    l1: dict[float, sae_lib.SparseAutoencoder]
    l1_measured: dict[float, Measured]
    topk: dict[float, sae_lib.SparseAutoencoder]
    topk_measured: dict[float, Measured]
    pentagon: ToySAE | None
    large: ToySAE | None
    seconds: dict[str, float]
    resampling: dict[str, dict] | None = None

    def grid(self, name: str) -> torch.Tensor:
        """``(n_ratios, n_l1)`` one metric of the L1 sweep (``"mmcs"``, ``"dead"``, ``"fvu"``, ...)."""
        return torch.stack([getattr(self.l1_measured[r], name).float() for r in self.l1])

    def l1_result(self, ratio: float, l1_coeff: float) -> dict:
        return self.l1_measured[ratio].row(L1_COEFFS.index(l1_coeff))

    def summary(self) -> dict:
        """Plain numbers for ``summary.json``."""
        out = {
            "seed": self.seed,
            "setup": {"d_in": D_IN, "n_features": N_TRUE, "expected_l0": EXPECTED_L0, "decay": DECAY, "steps": SAE_STEPS,
                      "batch_size": BATCH_SIZE, "lr": LR},
            "l1": [{"ratio": r, "dict_size": dict_size(r), "l1_coeff": lam, **self.l1_measured[r].row(i)}
                   for r in self.l1 for i, lam in enumerate(L1_COEFFS)],
            "topk": [{"ratio": r, "dict_size": dict_size(r), "k": TOPK_K, **self.topk_measured[r].row(0)} for r in self.topk],
            "seconds": self.seconds,
        }
        for name in ("pentagon", "large"):
            toy: ToySAE | None = getattr(self, name)
            if toy is not None:
                out[name] = {"n_features": toy.W.shape[1], "n_hidden": toy.W.shape[0], "d_sae": toy.sae.d_sae,
                             "represented": int(toy.represented.sum()), "mmcs_kept": toy.mmcs,
                             "recovered_90_kept": float((toy.max_cos[toy.represented] > 0.9).float().mean()),
                             "mmcs_restarts": toy.all_mmcs.tolist(), "kept": toy.kept,
                             "angles_degrees": toy.angles_degrees.tolist()}
        if self.resampling is not None:
            out["resampling"] = self.resampling
        return out


def run_study(
    seed: int = DEFAULT_SEED, steps: int = SAE_STEPS, device: str | torch.device = "cpu", toy_models: bool = True,
    l1_coeffs: tuple[float, ...] = L1_COEFFS, ratios: tuple[float, ...] = RATIOS, topk_ratios: tuple[float, ...] = TOPK_RATIOS,
    resampling: bool = False, progress: bool = True,
) -> Study:
    """Train the L1 sweep, the TopK SAEs, optionally the toy-model SAEs and the resampling demonstration; measure them all."""
    seconds = {}
    t = time.perf_counter()
    truth = features(seed).features
    h = eval_batch(seed)
    l1 = train_sweep(seed, l1_coeffs, ratios, steps, device, progress=progress)
    seconds["l1_sweep"] = time.perf_counter() - t
    t = time.perf_counter()
    topk = train_sweep(seed, ratios=topk_ratios, steps=steps, device=device, k=TOPK_K, progress=progress)
    seconds["topk"] = time.perf_counter() - t
    pent = large = resampled = None
    if toy_models:
        t = time.perf_counter()
        toy_steps = max(1, round(steps * TOY_STEPS / SAE_STEPS))
        model = train_toy(make_pentagon(seed, TOY_RESTARTS), seed, device, toy_steps)
        pent = sae_on_toy_model(model, PENTAGON_SIZE[0], seed, steps=steps, device=device, progress=progress)
        model = train_toy(make_model(seed=seed, restarts=TOY_RESTARTS), seed, device, toy_steps)
        large = sae_on_toy_model(model, 2 * LARGE_SIZE[0], seed, steps=steps, device=device, progress=progress)
        seconds["toy_models"] = time.perf_counter() - t
    if resampling:
        t = time.perf_counter()
        resampled = resampling_study(seed, steps, progress)
        seconds["resampling"] = time.perf_counter() - t
    return Study(
        seed=seed, features=truth, l1=l1, l1_measured={r: measure(s, truth, h) for r, s in l1.items()},
        topk=topk, topk_measured={r: measure(s, truth, h) for r, s in topk.items()}, pentagon=pent, large=large,
        seconds=seconds, resampling=resampled,
    )


def study_table(study: Study, title: str = "") -> "Table":
    """A :class:`rich.table.Table`: one line per SAE of the sweep (and the TopK ones)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("SAE", "dict", "λ / k", "MMCS", "> 0.9", "> 0.99", "dead", "L0", "FVU"):
        table.add_column(col, justify="right")

    def add(kind: str, r: float, setting: str, m: dict) -> None:
        table.add_row(kind, f"{r:g}x", setting, f"{m['mmcs']:.4f}", f"{m['recovered_90']:.0%}", f"{m['recovered_99']:.0%}",
                      f"{m['dead']}/{dict_size(r)}", f"{m['l0']:.2f}", f"{m['fvu']:.3f}")

    for r, measured in study.l1_measured.items():
        for i, lam in enumerate(L1_COEFFS[: measured.mmcs.shape[0]]):
            add("L1", r, f"{lam:g}", measured.row(i))
    for r, measured in study.topk_measured.items():
        add("TopK", r, f"k={TOPK_K}", measured.row(0))
    return table


def write_figures(study: Study, out_dir: Path) -> dict[str, Path]:
    """``recovery_sweep.png``, ``cosines_l1.png`` (2x, λ=0.01), ``cosines_no_l1.png``, ``cosines_topk.png``, ``pentagon_sae.png``."""
    figures = {}
    ratios = list(study.l1)
    topk = {r: float(m.mmcs[0]) for r, m in study.topk_measured.items()}
    figures["recovery_sweep"] = sae_plots.recovery_sweep(
        L1_COEFFS, ratios, study.grid("mmcs"), study.grid("dead_fraction"), study.grid("fvu"), topk
    )
    if 2.0 in study.l1:
        W_d = study.l1[2.0].decoder_directions()
        figures["cosines_l1"] = sae_plots.cosine_heatmap(
            study.features, W_d[L1_COEFFS.index(0.01)], "L1 SAE, dictionary 2x, λ = 0.01")
        figures["cosines_no_l1"] = sae_plots.cosine_heatmap(study.features, W_d[0], "no sparsity penalty, dictionary 2x")
    if 2.0 in study.topk:
        figures["cosines_topk"] = sae_plots.cosine_heatmap(
            study.features, study.topk[2.0].decoder_directions()[0], f"TopK SAE (k = {TOPK_K}), dictionary 2x")
    if study.pentagon is not None:
        p = study.pentagon
        figures["pentagon_sae"] = sae_plots.directions_2d(
            p.W, p.sae.W_d.detach()[p.kept], f"pentagon and its SAE: MMCS {p.mmcs:.3f}")
    return {name: save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}


def params(study: Study) -> dict[str, torch.Tensor]:
    """Every trained SAE's parameters, the true features and the toy models, by name (for ``params.safetensors``).

    ``W`` and ``b_final`` are the larger toy model's (``(1, m, n)``, ``(1, n)``); SAE tensors are named
    ``l1.ratio2.W_d``, ``topk.ratio2.W_e``, ``large.sae.W_d``, ... (``latent_mask`` as uint8).
    """
    tensors: dict[str, torch.Tensor] = {"features": study.features}
    for kind, saes in (("l1", study.l1), ("topk", study.topk)):
        for r, s in saes.items():
            for pname, p in s.state_dict().items():
                tensors[f"{kind}.ratio{r:g}.{pname}"] = p
    for name in ("pentagon", "large"):
        toy: ToySAE | None = getattr(study, name)
        if toy is not None:
            tensors[f"{name}.W"], tensors[f"{name}.b_final"] = toy.W[None], toy.b[None]
            for pname, p in toy.sae.state_dict().items():
                tensors[f"{name}.sae.{pname}"] = p
    if study.large is not None:
        tensors["W"], tensors["b_final"] = tensors["large.W"], tensors["large.b_final"]
    return {k: v.detach().to(torch.uint8) if v.dtype == torch.bool else v.detach().float() for k, v in tensors.items()}


def run(
    out_dir: str | Path = "out/sae",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Train and measure the whole study; print the table; write figures, ``table.txt``, ``params.safetensors``, ``summary.json``.

    ``steps`` is the SAEs' training length (the toy models train 2.5 times as long).
    """
    run = Run(NAME, out_dir, steps, device, seed, console)
    study = run_study(run.seed, run.steps, run.device, resampling=True, progress=run.progress)
    run.seconds.update(study.seconds)
    table = study_table(study, f"{NAME}: {N_TRUE} features in {D_IN} dims, ~{EXPECTED_L0:g} active, {run.steps} steps, "
                               f"seed {run.seed}")
    run.table(table)
    for name in ("pentagon", "large"):
        toy: ToySAE = getattr(study, name)
        run.print(f"{name} toy model (n={toy.W.shape[1]}, m={toy.W.shape[0]}): {int(toy.represented.sum())} features "
                  f"represented; SAE with {toy.sae.d_sae} latents, kept restart MMCS {toy.mmcs:.3f} "
                  f"(restarts: {', '.join(f'{v:.3f}' for v in toy.all_mmcs.tolist())})")
    run.figures_written(write_figures(study, run.out))
    from rich.console import Console as _Console

    with open(run.out / "table.txt", "w") as fh:  # the sweep's table alone (summary.txt has everything printed)
        _Console(file=fh, width=120).print(table)
    large_model = make_model(seed=run.seed)
    with torch.no_grad():
        large_model.W.copy_(study.large.W[None])
        large_model.b_final.copy_(study.large.b[None])
    measured = study.summary()
    for key in ("seed", "seconds"):  # the template writes both
        del measured[key]
    return run.finish(
        models={"large": large_model}, tensors=params(study), summaries={"large": summary(large_model)},
        config=measured.pop("setup"), table={"l1": measured.pop("l1"), "topk": measured.pop("topk")},
        **measured,
    )
