"""Disentanglement and similarity under superposition (lesson 12): the metrics, two networks, a VAE's latent space.

Four parts, one study (:func:`run_study`):

* **The codes** (:func:`measure_codes`): MIG and DCI disentanglement of the identity code
  (n = m = 2), the same code rotated 45°, the toy model's pentagon ``h = W x``
  (n = 5, m = 2) and the SAE-like read-out ``ReLU(W^T h + b)`` at the biases
  :data:`supercourse.disentanglement.READOUT_BIASES`, on :data:`CODE_SAMPLES`
  factors ``Bernoulli(0.05) * U[0, 1]``, beside the independent figures of issue 19
  (:data:`INDEPENDENT`). DCI uses a least-squares probe, and a lasso (:data:`LASSO_L1`).
* **Two networks, one set of features** (:func:`supercourse.disentanglement.similarity_study`):
  100 sparse features (density 0.02) through two random 100 -> 20 maps; linear CKA of the
  hidden layers, of a hidden layer and its rotation, and of TopK SAEs (k = 2, 100 latents) on each.
* **A generative model's latent space**: VAEs and autoencoders with a 2-D latent space on
  observations ``tanh(M v + c)`` (16 dims) of 5 sparse factors, one instance per beta in
  :data:`BETAS` and density in :data:`VAE_DENSITIES`, measured by
  :func:`supercourse.disentanglement.latent_study`.
* **Rotation invariance** (:func:`rotation_scan`): the trained VAE's objective with its latent
  space rotated, under the isotropic Gaussian prior and a factorised Laplace prior, and the MIG
  of the rotated latents.

Measured (seed 0, ``supercourse reproduce disentanglement``; ``tests/test_disentanglement.py``
and ``tests/test_experiment_disentanglement.py`` assert them across seeds): see the lesson's
closing table; the numbers are in ``summary.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import disentanglement as dis
from .. import disentanglement_plots as plots
from .._validate import check_positive_int
from ..model import ToyModel
from ..training import History, train
from ._common import ExperimentResult, SummaryRow, save_figure, summarize
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

NAME = "disentanglement"
DESCRIPTION = ("disentanglement under superposition: MIG/DCI of rotated and superposed codes, CKA of two networks "
               "and SAEs, a VAE's latent space")

# The codes
CODE_SAMPLES = 200_000
"""Factor samples per code (the independent figures used 200,000)."""
CODE_DENSITY = dis.DENSITY
LASSO_L1 = 0.002
"""The lasso probe's penalty: enough to drop the read-out's interference-correcting coefficients."""
INDEPENDENT: dict[str, tuple[float, float | None]] = {
    "identity": (0.996, 1.000),
    "rotated 45°": (0.123, 0.000),
    "pentagon": (0.177, 0.109),
    "read-out b=0": (0.089, 1.0),
    "read-out b=-0.1": (0.232, 1.0),
    "read-out b=-0.2": (0.365, 1.0),
    "read-out b=-0.31": (0.538, 1.0),
}
"""Issue 19's independent figures ``{code: (MIG, DCI-D)}`` (factors Bernoulli(0.05) * U[0, 1], 200,000 samples)."""

# Two networks, one set of features
SIM_FEATURES = 100
SIM_HIDDEN = 20
SIM_DENSITY = 0.02
SIM_SAMPLES = 20_000
SIM_D_SAE = 100
SIM_K = 2
"""TopK's k: the expected number of active features, 100 x 0.02."""
SIM_SAE_STEPS = 4000
INDEPENDENT_CKA = {"hidden": 0.16, "rotation": 1.00}

# The VAE
N_FACTORS = 5
D_OBS = 16
D_LATENT = 2
HIDDEN = 64
BETAS: tuple[float, ...] = (0.0, 0.01, 0.1, 0.3, 1.0)
"""KL weights; 0 is a plain autoencoder (no sampling noise)."""
VAE_DENSITIES: tuple[float, ...] = (0.05, 0.2, 1.0)
VAE_STEPS = 5000
BATCH_SIZE = 256
LR = 1e-3
LATENT_SAMPLES = 20_000
LATENT_SAE_STEPS = 2000
LATENT_SAE_RESTARTS = 4
ROTATION_ANGLES = 37
"""Angles from 0 to 180 degrees at which the latent space is rotated."""
ROTATION_BETA = 0.1
ROTATION_DENSITY = 0.05
"""The grid's instance whose latent space :func:`rotation_scan` rotates."""

DENSITIES: tuple[float, ...] = (CODE_DENSITY,)
"""The density of :func:`make_model`'s one instance, the SAE-like read-out as a toy model (the experiment interface)."""

DEFAULT_STEPS = VAE_STEPS
DEFAULT_SEED = 0


def measure_codes(n_samples: int = CODE_SAMPLES, seed: int = DEFAULT_SEED) -> list[dict]:
    """MIG, DCI-D (least squares and lasso probes) and mean feature dimensionality of every code of
    :func:`supercourse.disentanglement.code_suite`, one dict per code, with the independent figures."""
    rows = []
    for code in dis.code_suite(n_samples, seed=seed, density=CODE_DENSITY):
        ref = INDEPENDENT.get(code.name, (None, None))
        rows.append({
            "code": code.name,
            "mig": float(dis.mig(code.codes, code.factors)),
            "dci": float(dis.dci(code.codes, code.factors)),
            "dci_lasso": float(dis.dci(code.codes, code.factors, l1=LASSO_L1)),
            "mean_dimensionality": code.mean_dimensionality,
            "independent_mig": ref[0],
            "independent_dci": ref[1],
        })
    return rows


def make_vae(seed: int = DEFAULT_SEED) -> dis.LatentVAE:
    """The untrained grid: one instance per ``(density, beta)``, density-major, on the seed's observation map."""
    betas = [b for _ in VAE_DENSITIES for b in BETAS]
    densities = [p for p in VAE_DENSITIES for _ in BETAS]
    return dis.LatentVAE(dis.observation_map(N_FACTORS, D_OBS, seed=seed), D_LATENT, betas, densities,
                         hidden=HIDDEN, seed=seed)


def train_vae(vae: dis.LatentVAE, steps: int = VAE_STEPS, seed: int = DEFAULT_SEED,
              device: str | torch.device = "cpu", progress: bool = False) -> History:
    """Adam (AdamW without weight decay), lr 1e-3, batch 256, ``steps`` steps; the model ends on the CPU."""
    history = train(vae, steps=steps, batch_size=BATCH_SIZE, lr=LR, weight_decay=0.0, seed=seed, device=device,
                    progress=progress)
    vae.cpu()
    return history


def instance(beta: float, density: float) -> int:
    """The index of the grid's instance with this ``beta`` and ``density``."""
    return VAE_DENSITIES.index(density) * len(BETAS) + BETAS.index(beta)


@torch.no_grad()
def rotation_scan(vae: dis.LatentVAE, seed: int = DEFAULT_SEED, n_samples: int = 4096,
                  beta: float = ROTATION_BETA, density: float = ROTATION_DENSITY, mig_fn=None) -> dict[str, torch.Tensor]:
    """The objective of one trained VAE with its latent space rotated, and the MIG of its rotated latents.

    Returns ``{"angles": (n,), "gaussian": (n,), "laplace": (n,), "mig": (n,)}``: the objective under each
    prior minus its value at angle 0, divided by ``beta`` (the change of the KL term, in nats; same inputs and
    noise at every angle), and the MIG of the rotated posterior means against the factors (``mig_fn``, default
    :func:`supercourse.disentanglement.mig`).
    """
    mig_fn = dis.mig if mig_fn is None else mig_fn
    vae.eval()
    k = instance(beta, density)
    gen = torch.Generator().manual_seed(seed + 91)
    factors = vae.sample_factors(n_samples, gen)
    obs = vae.observe(factors)
    eps = torch.randn(n_samples, vae.n_instances, vae.d_latent, generator=gen)
    mu = vae.latents(factors)[:, k].double()
    angles = torch.linspace(0, math.pi, ROTATION_ANGLES, dtype=torch.float64)
    out = {"angles": angles}
    for prior in ("gaussian", "laplace"):
        vals = torch.stack([dis.rotated_objective(vae, obs, dis.rotation_2d(float(a), torch.float32), eps, prior)[k]
                            for a in angles]).double()
        out[prior] = (vals - vals[0]) / beta
    out["mig"] = torch.tensor([float(mig_fn(mu @ dis.rotation_2d(float(a)).mT, factors[:, k].double())) for a in angles],
                              dtype=torch.float64)
    return out


@dataclass
class Study:
    """Everything :func:`run_study` trained and measured."""

    seed: int
    codes: list[dict]
    similarity: dis.SimilarityResult
    similarity_scores: dict[str, float]
    vae: dis.LatentVAE
    history: History
    latent: dis.LatentResult
    rotation: dict[str, torch.Tensor]
    seconds: dict[str, float]
    code_samples: int = CODE_SAMPLES

    def summary(self) -> dict:
        """Plain numbers for ``summary.json`` (its ``table``); the timings are in ``seconds``."""
        rot = self.rotation
        return {
            "seed": self.seed,
            "codes": {"n_samples": self.code_samples, "density": CODE_DENSITY, "lasso_l1": LASSO_L1, "rows": self.codes},
            "similarity": {"n_features": SIM_FEATURES, "n_hidden": SIM_HIDDEN, "density": SIM_DENSITY,
                           "d_sae": SIM_D_SAE, "k": SIM_K, "independent": INDEPENDENT_CKA, **self.similarity_scores},
            "vae": {"n_factors": N_FACTORS, "d_obs": D_OBS, "d_latent": D_LATENT, "hidden": HIDDEN,
                    "betas": list(BETAS), "densities": list(VAE_DENSITIES), "steps": int(self.history.steps[-1]) + 1,
                    "rows": self.latent.rows()},
            "rotation": {"max_abs_gaussian": float(rot["gaussian"].abs().max()),
                         "laplace_range": float(rot["laplace"].max() - rot["laplace"].min()),
                         "mig_min": float(rot["mig"].min()), "mig_max": float(rot["mig"].max())},
        }


def run_study(seed: int = DEFAULT_SEED, steps: int = VAE_STEPS, device: str | torch.device = "cpu",
              console: "Console | None" = None, code_samples: int | None = None) -> Study:
    """Measure the codes, run the two-network study, train and measure the VAE grid, scan rotations.

    ``steps`` is the VAEs' training length; the SAEs train ``steps / VAE_STEPS`` times their recipe's.
    ``code_samples`` defaults to :data:`CODE_SAMPLES`.
    Progress goes to ``console`` (a progress bar while training when it is a terminal).
    """
    progress = console is not None and console.is_terminal
    say = console.print if console is not None else (lambda *a, **k: None)
    seconds = {}
    scale = steps / VAE_STEPS
    code_samples = CODE_SAMPLES if code_samples is None else check_positive_int("code_samples", code_samples)
    t = time.perf_counter()
    say(f"[1/4] measuring {len(INDEPENDENT)} codes on {code_samples:,} samples ...")
    codes = measure_codes(code_samples, seed)
    seconds["codes"] = time.perf_counter() - t
    t = time.perf_counter()
    say(f"[2/4] two networks through random {SIM_FEATURES} -> {SIM_HIDDEN} maps, SAEs on each ...")
    sim = dis.similarity_study(SIM_FEATURES, SIM_HIDDEN, SIM_DENSITY, seed=seed, n_samples=SIM_SAMPLES,
                               d_sae=SIM_D_SAE, k=SIM_K, sae_steps=max(1, round(SIM_SAE_STEPS * scale)),
                               device=device, progress=progress)
    scores = sim.scores()
    seconds["similarity"] = time.perf_counter() - t
    t = time.perf_counter()
    vae = make_vae(seed)
    say(f"[3/4] training {vae.n_instances} VAEs/autoencoders ({len(VAE_DENSITIES)} densities x {len(BETAS)} betas), "
        f"{steps} steps ...")
    history = train_vae(vae, steps, seed, device, progress)
    seconds["vae_training"] = time.perf_counter() - t
    t = time.perf_counter()
    say("[4/4] measuring the latent spaces (directions, dimensionality, MIG, SAEs) and rotating them ...")
    latent = dis.latent_study(vae, seed=seed, n_samples=LATENT_SAMPLES, sae_steps=max(1, round(LATENT_SAE_STEPS * scale)),
                              sae_restarts=LATENT_SAE_RESTARTS, device=device)
    rotation = rotation_scan(vae, seed)
    seconds["latent"] = time.perf_counter() - t
    return Study(seed=seed, codes=codes, similarity=sim, similarity_scores=scores, vae=vae, history=history,
                 latent=latent, rotation=rotation, seconds=seconds, code_samples=code_samples)


# --------------------------------------------------------------------------- tables


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def codes_table(rows: list[dict], title: str = "") -> "Table":
    """One line per code: MIG and DCI-D as measured and as measured independently, and the mean D_i."""
    from rich.table import Table

    caption = ("MIG: mutual information gap (zero bin + 20 quantile bins), ref.: issue 19's independent figure\n"
               f"DCI-D: DCI disentanglement with a least-squares probe; lasso: with a lasso probe (l1 = {LASSO_L1})\n"
               "D_i: mean feature dimensionality of the linear map's columns (1: a dimension each, 0.4: a pentagon)")
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left")
    for col in ("code", "MIG", "ref.", "DCI-D", "lasso", "ref.", "D_i"):
        table.add_column(col, justify="left" if col == "code" else "right")
    for r in rows:
        table.add_row(r["code"], _fmt(r["mig"]), _fmt(r["independent_mig"]), _fmt(r["dci"]), _fmt(r["dci_lasso"]),
                      _fmt(r["independent_dci"], 1 if r["code"].startswith("read-out") else 3),
                      _fmt(r["mean_dimensionality"], 2))
    return table


def similarity_table(scores: dict[str, float], title: str = "") -> "Table":
    """Linear CKA and mean max correlation of the hidden layers, a rotation, and the SAE latents."""
    from rich.table import Table

    caption = ("CKA: linear centred kernel alignment; MMC: mean over units of the best correlation with the other "
               "network's units\nMMCS: each SAE's recovery of its own network's feature directions")
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left")
    for col in ("compared", "CKA", "ref.", "MMC"):
        table.add_column(col, justify="left" if col == "compared" else "right")
    table.add_row("hidden A vs hidden B", _fmt(scores["cka_hidden"]), _fmt(INDEPENDENT_CKA["hidden"], 2), _fmt(scores["mmc_hidden"]))
    table.add_row("hidden A vs A rotated", _fmt(scores["cka_rotation"]), _fmt(INDEPENDENT_CKA["rotation"], 2), "—")
    table.add_row("features vs hidden A", _fmt(scores["cka_features_hidden"]), "—", "—")
    table.add_row("SAE A vs SAE B", _fmt(scores["cka_sae"]), "—", _fmt(scores["mmc_sae"]))
    table.add_row("features vs SAE A", _fmt(scores["cka_features_sae"]), "—", "—")
    table.add_row("SAE recovery (MMCS) A / B", f"{scores['mmcs_a']:.3f} / {scores['mmcs_b']:.3f}", "—", "—")
    return table


def latent_table(latent: dis.LatentResult, title: str = "") -> "Table":
    """One line per VAE/autoencoder of the grid."""
    from rich.table import Table

    caption = ("p: the factors' density; FVU: variance of the observations the reconstruction misses; KL: nats per input\n"
               "rep.: factors whose effect on the observation the model reproduces (factor FVU < 0.5)\n"
               "ΣD_i: summed feature dimensionality of the represented factors' latent directions (at most m = 2 "
               "when packed without waste)\nMIG: of the posterior means; SAE: MMCS of an SAE on the latent space "
               "against the factor directions, and the MIG of its latents")
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left")
    for col in ("p", "model", "FVU", "KL", "rep.", "ΣD_i", "MIG", "SAE MMCS", "SAE MIG"):
        table.add_column(col, justify="right")
    for r in latent.rows():
        table.add_row(f"{r['density']:g}", "AE" if r["beta"] == 0 else f"β={r['beta']:g}", _fmt(r["fvu"]), f"{r['kl']:.2f}",
                      str(r["represented"]), _fmt(r["sum_dimensionality"], 2), _fmt(r["mig"]), _fmt(r["sae_mmcs"]),
                      _fmt(r["sae_mig"]))
    return table


# --------------------------------------------------------------------------- figures and artifacts


def write_figures(study: Study, out_dir: Path) -> dict[str, Path]:
    """``codes.png``, ``metrics.png``, ``similarity.png``, ``latents.png``, ``latent_grid.png``, ``rotation.png``."""
    out_dir = Path(out_dir)
    figs = {}
    suite = dis.code_suite(20_000, seed=study.seed)
    by_name = {c.name: c for c in suite}
    measured = {r["code"]: r for r in study.codes}

    def title(name: str, text: str) -> str:
        r = measured.get(name)
        if r is None:
            return text
        return f"{text}\nMIG {r['mig']:.2f}, DCI-D {r['dci']:.2f}, D_i {r['mean_dimensionality']:.2f}"

    figs["codes"] = plots.code_scatter([
        (title(name, text), by_name[name].codes, by_name[name].W)
        for name, text in (("identity", "identity (n = m = 2)"),
                           ("rotated 45°", "rotated 45°: distributed, not superposed"),
                           ("pentagon", "pentagon: 5 factors in 2 dims"))
    ])
    figs["metrics"] = plots.metric_bars(study.codes, INDEPENDENT)
    sim = study.similarity
    figs["similarity"] = plots.similarity_panels(study.similarity_scores, sim.h[:, 0], sim.h[:, 1], sim.f[:, 0], sim.f[:, 1])
    lat = study.latent
    panels = []
    mu0 = study.vae.latents(torch.zeros(1, study.vae.n_instances, study.vae.n_factors))[0]
    for beta in BETAS:
        k = instance(beta, VAE_DENSITIES[0])
        name = "autoencoder" if beta == 0 else f"β = {beta:g}"
        title = (f"{name}: {int(lat.represented[k].sum())} factors, ΣD_i {float(lat.dimensionality[k][lat.represented[k]].sum()):.2f}\n"
                 f"SAE MMCS {_fmt(float(lat.sae_mmcs[k]), 2)}, MIG {float(lat.mig[k]):.2f}")
        if not bool(lat.represented[k].any()):
            title += f", arrows ≤ {float(lat.directions[k].norm(dim=0).max()):.2g} long"
        panels.append((title, lat.mu[:, k] - mu0[k], lat.directions[k], lat.sae_W_d[k] if bool(lat.represented[k].any()) else None))
    figs["latents"] = plots.latent_panels(panels)
    shape = (len(VAE_DENSITIES), len(BETAS))
    sum_dim = (lat.dimensionality * lat.represented).sum(dim=1)
    figs["latent_grid"] = plots.latent_grid(BETAS, VAE_DENSITIES, lat.n_represented.reshape(shape).double(),
                                            lat.fvu.reshape(shape), sum_dim.reshape(shape), D_LATENT)
    rot = study.rotation
    figs["rotation"] = plots.rotation_scan(rot["angles"], {"isotropic Gaussian": rot["gaussian"],
                                                           "factorised Laplace": rot["laplace"]}, rot["mig"])
    return {name: save_figure(fig, out_dir / f"{name}.png") for name, fig in figs.items()}


def readout_model(bias: float = dis.READOUT_BIASES[-1]) -> ToyModel:
    """The SAE-like read-out as a toy model: ``W`` the pentagon ``(1, 2, 5)``, ``b_final = bias`` (density 0.05)."""
    model = ToyModel(N_FACTORS, D_LATENT, feature_probability=CODE_DENSITY, seed=0)
    with torch.no_grad():
        model.W.copy_(dis.polygon(N_FACTORS, dtype=torch.float32)[None])
        model.b_final.fill_(bias)
    return model


def params(study: Study) -> dict[str, torch.Tensor]:
    """Tensors for ``params.safetensors``: ``W``/``b_final`` (the read-out toy model), the VAE grid (``vae.*``),
    its factor directions, the similarity study's maps and SAEs (``similarity.*``) and the latent SAEs' decoders."""
    model = readout_model()
    tensors: dict[str, torch.Tensor] = {"W": model.W, "b_final": model.b_final}
    tensors.update({f"vae.{k}": v for k, v in study.vae.state_dict().items()})
    tensors["vae.directions"] = study.latent.directions
    tensors["latent.sae_W_d"] = study.latent.sae_W_d
    tensors["similarity.maps"] = study.similarity.maps
    tensors.update({f"similarity.sae.{k}": v for k, v in study.similarity.sae.state_dict().items()})
    return {k: v.detach().to(torch.uint8) if v.dtype == torch.bool else v.detach().float() for k, v in tensors.items()}


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED) -> ToyModel:
    """The read-out toy model (:func:`readout_model`); ``activation`` and ``seed`` are accepted for the interface."""
    return readout_model()


def summary(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One row per instance of a toy model (:func:`supercourse.experiments.summarize`)."""
    return summarize(model, history)


def run(
    out_dir: str | Path = "out/disentanglement",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Run the whole study on the shared template (:class:`~._run.Run`): print its tables, write the figures,
    ``params.safetensors`` and ``summary.json``.

    ``steps`` is the VAEs' training length (the SAEs train in proportion). ``summary.json`` holds the common
    keys; its ``table`` is :meth:`Study.summary` (codes, similarity, VAE grid, rotation), the numbers the
    lesson's prose quotes at the default steps and seed 0.
    """
    r = Run(NAME, out_dir, steps, device, seed, console)
    study = run_study(r.seed, r.steps, r.device, r.console)
    r.seconds.update(study.seconds)
    r.trained(f"{study.vae.n_instances} VAEs/autoencoders x {r.steps} steps", study.seconds["vae_training"])
    r.table(codes_table(study.codes, f"{NAME}: MIG and DCI disentanglement of the codes "
                                     f"({study.code_samples:,} samples, seed {r.seed})"))
    r.table(similarity_table(study.similarity_scores, f"{NAME}: two networks, the same {SIM_FEATURES} features "
                                                      f"(density {SIM_DENSITY}) through random {SIM_FEATURES} -> "
                                                      f"{SIM_HIDDEN} maps"))
    r.table(latent_table(study.latent, f"{NAME}: VAEs with {D_LATENT} latent dims on {N_FACTORS} sparse factors "
                                       f"({r.steps} steps)"))
    r.print(rotation_note(study.summary()["rotation"]))
    with r.timed("figures"):
        r.figures_written(write_figures(study, r.out))
    model = readout_model()
    return r.finish(
        table=study.summary(),
        models={"readout": model},
        tensors=params(study),
        histories={"vae": study.history},
        summaries={"readout": summary(model)},
        config=config(),
    )


def rotation_note(rot: dict) -> str:
    """One line on the rotation scan (``Study.summary()["rotation"]``)."""
    return (f"rotating the latent space (0-180°): the objective / β changes by at most {rot['max_abs_gaussian']:.2g} "
            f"nats with the isotropic Gaussian prior, by up to {rot['laplace_range']:.3g} nats with a factorised "
            f"Laplace prior; MIG of the rotated latents ranges {rot['mig_min']:.3f}-{rot['mig_max']:.3f}")


def config() -> dict:
    """The recipe's constants, for ``summary.json``."""
    return {
        "codes": {"n_samples": CODE_SAMPLES, "density": CODE_DENSITY, "bins": dis.BINS, "lasso_l1": LASSO_L1,
                  "readout_biases": list(dis.READOUT_BIASES), "independent": {k: list(v) for k, v in INDEPENDENT.items()}},
        "similarity": {"n_features": SIM_FEATURES, "n_hidden": SIM_HIDDEN, "density": SIM_DENSITY,
                       "n_samples": SIM_SAMPLES, "d_sae": SIM_D_SAE, "k": SIM_K, "sae_steps": SIM_SAE_STEPS,
                       "independent": INDEPENDENT_CKA},
        "vae": {"n_factors": N_FACTORS, "d_obs": D_OBS, "d_latent": D_LATENT, "hidden": HIDDEN, "betas": list(BETAS),
                "densities": list(VAE_DENSITIES), "steps": VAE_STEPS, "batch_size": BATCH_SIZE, "lr": LR,
                "latent_samples": LATENT_SAMPLES, "latent_sae_steps": LATENT_SAE_STEPS,
                "latent_sae_restarts": LATENT_SAE_RESTARTS},
        "rotation": {"angles": ROTATION_ANGLES, "beta": ROTATION_BETA, "density": ROTATION_DENSITY},
    }
