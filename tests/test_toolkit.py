"""The shared check toolkit (autograder.toolkit) and the figure reader (autograder.worker.figures)."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib.figure import Figure

from autograder.framework import CheckFailed, prop
from autograder.toolkit import (
    TINY, Case, Mistake, close, diagnose, fmt, fmt_pair, random_W, rotation, tensor_out, tensor_properties,
    with_zero_columns,
)
from autograder.toolkit import bars, polytopes, stats
from autograder.exercises import PROPERTY_ATTR
from autograder.toolkit.randomness import property_seed
from autograder.worker.figures import figure_data
from supercourse import geometry, metrics


@pytest.fixture(autouse=True)
def _inside_a_property(request):
    """The toolkit draws check inputs from the property's secret, so each test runs as one property would."""
    if request.node.name.startswith("test_random_W") or request.node.name.startswith("test_rotation"):
        yield
        return
    with property_seed(2024, "00.toolkit", request.node.name):
        yield


# --------------------------------------------------------------------------- formatting


def test_fmt_pair_shows_digits_enough_to_see_a_difference():
    want, got = torch.tensor(0.04951562, dtype=torch.float64), torch.tensor(0.04951561, dtype=torch.float64)
    w, g = fmt_pair(want, got)
    assert w != g and w.startswith("0.04951562")
    assert fmt_pair(1.0, 1.0) == ("1", "1")
    assert fmt(torch.arange(20)) .endswith(", ...]") and fmt(torch.tensor(2.5)) == "2.5"


# --------------------------------------------------------------------------- weights, rotations, polytopes


def test_random_W_norms_ranks_and_dtype():
    with property_seed(12345, "00.fake", "test_weights"):
        _random_W_norms_ranks_and_dtype()
    with pytest.raises(RuntimeError, match="inside a graded property"):
        random_W(0, 3, 5, 7)


def _random_W_norms_ranks_and_dtype():
    W = random_W(0, 3, 5, 7, norms=TINY, rank=2, dtype=torch.float64)
    assert W.shape == (3, 5, 7) and W.dtype == torch.float64
    norms = W.norm(dim=1)
    assert (norms > TINY[0] - 1e-12).all() and (norms < TINY[1] + 1e-12).all()
    assert all(torch.linalg.matrix_rank(w) == 2 for w in W)
    assert torch.equal(random_W(0, 3, 5, 7), random_W(0, 3, 5, 7)) and not torch.equal(random_W(0, 3, 5, 7), random_W(1, 3, 5, 7))
    Z = with_zero_columns(random_W(2, 2, 3, 4), [(0, 1)], instances=[1])
    assert (Z[0, :, 1] == 0).all() and (Z[1] == 0).all() and (Z[0, :, 0] != 0).any()
    with pytest.raises(ValueError, match="rank"):
        random_W(0, 1, 3, 3, rank=4)


def test_rotation_is_orthogonal_and_seeded():
    with property_seed(12345, "00.fake", "test_rotation"):
        Q = rotation(3, 6, torch.float64)
        assert torch.allclose(Q.T @ Q, torch.eye(6, dtype=torch.float64), atol=1e-12)
        assert torch.equal(rotation(3, 6), rotation(3, 6)) and not torch.equal(rotation(3, 6), rotation(4, 6))
        first = rotation(3, 6)
    with property_seed(54321, "00.fake", "test_rotation"):
        assert not torch.equal(rotation(3, 6), first), "another secret draws another rotation"


@pytest.mark.parametrize("name", sorted(polytopes.SHAPES))
def test_every_named_polytope_has_the_dimensionality_geometry_names(name):
    W = polytopes.tegum_product([polytopes.SHAPES[name]()], m=4, seed=1).unsqueeze(0)
    (k, d), = [kd for kd, n in geometry.POLYTOPES.items() if n == name]
    assert W.shape[-1] == k
    assert torch.allclose(metrics.feature_dimensionality(W), torch.full((1, k), d / k), atol=1e-5)
    # A square's adjacent vertices are orthogonal: as tegum factors it is two digons.
    assert [f.name for f in geometry.tegum_factors(W)[0]] == (["digon", "digon"] if name == "square" else [name])


# --------------------------------------------------------------------------- contracts


def test_close_accepts_float32_exact_answers_and_judges_tiny_values_at_their_scale():
    want = torch.tensor([0.0495156123, 1.0], dtype=torch.float64)
    assert close(want.float(), want)
    assert close(torch.tensor([1e-16, 0.0]), torch.zeros(2))
    tiny = torch.tensor([1e-4, 2e-4], dtype=torch.float64)
    assert not close(tiny * 1.01, tiny)


def test_tensor_out_states_each_broken_promise():
    x = torch.zeros(2, 3, dtype=torch.float64)
    ok = tensor_out(torch.ones(2, 3, dtype=torch.float64, requires_grad=True), what="P", shape=(2, 3), meaning="(a, b)", like=x)
    assert not ok.requires_grad
    cases = [
        ([1, 2], "torch.Tensor"),
        (torch.ones(6, dtype=torch.float64), "another shape"),
        (torch.ones(2, 3), "input's dtype"),
        (torch.ones(2, 3, dtype=torch.long), "floating-point"),
        (torch.full((2, 3), float("nan"), dtype=torch.float64), "finite"),
    ]
    for out, words in cases:
        with pytest.raises(CheckFailed, match=words.replace("(", r"\(")):
            tensor_out(out, what="P", shape=(2, 3), meaning="(a, b)", like=x)
    with pytest.raises(CheckFailed, match="whole numbers stored as floats"):
        tensor_out(torch.ones(2), what="P", shape=(2,), meaning="(a,)", kind="integer")


# --------------------------------------------------------------------------- mistakes and generated properties


def test_a_mistake_hint_must_contain_its_keyword():
    with pytest.raises(ValueError, match="keyword"):
        Mistake("m", lambda x: x, "squared", "take the square root")
    Mistake("m", lambda x: x, "squared", compare=False)


def test_diagnose_names_the_first_matching_mistake_and_skips_raising_ones():
    table = [
        Mistake("raises", lambda x: 1 / 0, "never", "never"),
        Mistake("double", lambda x: 2 * x, "doubled", "You doubled it."),
        Mistake("square", lambda x: x * x, "squared", "You squared it."),
    ]
    x = torch.tensor([1.0, 3.0])
    assert diagnose(table, torch.tensor([1.0, 9.0]), [x]) == " You squared it."
    assert diagnose(table, torch.tensor([5.0, 5.0]), [x]) == ""


def test_generated_properties_are_graded_properties():
    tests = tensor_properties(
        "norms", function="norms", reference=lambda W: W.norm(dim=1), meaning="(k, n)",
        shape=lambda W: (W.shape[0], W.shape[2]), points={"shape": 0.5, "values": 1},
        shape_cases=[Case("W", lambda: (random_W(0, 2, 3, 4),))], value_cases=[Case("W", lambda: (random_W(1, 2, 3, 4),))],
        mistakes=[Mistake("sq", lambda W: W.square().sum(1), "squared", "You squared it.")],
    )
    assert sorted(tests) == ["test_norms_shape", "test_norms_values"]
    assert getattr(tests["test_norms_values"], PROPERTY_ATTR) == ("norms", 1)
    tests["test_norms_values"](lambda W: W.norm(dim=1))
    with pytest.raises(CheckFailed, match="You squared it"):
        tests["test_norms_values"](lambda W: W.square().sum(1))
    with pytest.raises(ValueError, match="families"):
        tensor_properties("x", function="x", reference=abs, meaning="", shape=lambda: (), points={"speed": 1})
    assert prop  # the generated functions carry the same mark as @prop


# --------------------------------------------------------------------------- statistics


def test_statistical_tests_tell_distributions_apart():
    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(4000, generator=gen)
    uniform = (torch.rand(4000, generator=gen) - 0.5) * math.sqrt(12)  # same mean 0 and std 1
    assert stats.ks_test(normal, stats.normal_cdf(0, 1))
    assert not stats.ks_test(uniform, stats.normal_cdf(0, 1))
    assert stats.ks_test(uniform, stats.uniform_cdf(-math.sqrt(3), math.sqrt(3)))
    assert stats.mean_ok(normal, 0.0, 1.0) and not stats.mean_ok(normal + 0.3, 0.0, 1.0)
    assert stats.proportion_ok(498, 1000, 0.5) and not stats.proportion_ok(600, 1000, 0.5)
    assert stats.proportion_ok(0, 10, 0.0) and not stats.proportion_ok(1, 10, 0.0)


# --------------------------------------------------------------------------- figures as plain data


def _is_plain(x) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return all(_is_plain(v) for v in x)
    return x is None or isinstance(x, (str, int, float, bool))


def test_figure_data_is_plain_and_reads_bars_in_display_order():
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = Figure()
    a, b = fig.subplots(1, 2)
    a.barh(range(3), [0.5, 1.0, 1.5], color=["black", "red", "gold"])
    a.invert_yaxis()
    a.set_title("left")
    b.bar(range(2), [2.0, 1.0])
    fig.colorbar(ScalarMappable(Normalize(0, 1), "viridis"), ax=[a, b])
    data = figure_data(fig)
    assert _is_plain(data) and data["kind"] == "figure"
    panels = bars.panels(data)
    assert len(panels) == 2 and len(data["axes"]) == 3  # the colorbar is left out
    left, right = panels
    assert left["title"] == "left" and bars.lengths(left) == [0.5, 1.0, 1.5]
    assert bars.display_order(left) == [0, 1, 2]  # inverted y axis: feature 0 at the top
    assert bars.display_order(right) == [0, 1] and bars.lengths(right) == [2.0, 1.0]
    assert bars.same_colour(left["bars"][2]["color"], [1.0, 0.843, 0.0, 1.0], tol=0.01)
    assert bars.luminance([0, 0, 0, 1]) == 0 and bars.luminance([1, 1, 1, 1]) == pytest.approx(1)
    assert figure_data(None)["kind"] == "not a figure"
