"""supercourse.data: broadcasting of densities and the three sparse generators.

Statistical tests draw seeded samples and allow ``Z`` standard errors around the
exact expectation (Z = 6: a correct generator fails less than once in 10^8 per
check, a wrong one, e.g. density off by 5%, fails reliably at these sample sizes).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from supercourse import data
from supercourse.data import (
    anticorrelated_sparse,
    correlated_sparse,
    per_feature,
    sparse_from_uniform,
    sparse_uniform,
)

Z = 6.0  # tolerance in standard errors for every statistical check below


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_rate(observed: torch.Tensor, expected: torch.Tensor | float, n: int) -> None:
    """``observed`` frequencies from ``n`` Bernoulli trials match ``expected`` within Z standard errors."""
    expected = torch.as_tensor(expected, dtype=torch.float64).expand_as(observed)
    se = (expected * (1 - expected) / n).sqrt().clamp_min(1.0 / n)
    err = (observed.double() - expected).abs()
    assert (err <= Z * se).all(), f"rates {observed.tolist()} vs expected {expected.tolist()} (se {se.max():.2g})"


# ---------------------------------------------------------------- per_feature


class TestPerFeature:
    def test_scalar(self):
        out = per_feature("p", 0.25, 3, 4)
        assert out.shape == (3, 4) and out.dtype == torch.float32
        assert torch.equal(out, torch.full((3, 4), 0.25))

    def test_per_instance_vector(self):
        out = per_feature("p", torch.tensor([0.1, 0.2, 0.3]), 3, 4)
        assert torch.equal(out, torch.tensor([0.1, 0.2, 0.3])[:, None].expand(3, 4))

    def test_per_feature_vector(self):
        out = per_feature("p", [1.0, 2.0, 3.0, 4.0], 3, 4)
        assert torch.equal(out, torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(3, 4))

    def test_full_matrix(self):
        full = torch.arange(12.0).reshape(3, 4)
        out = per_feature("p", full, 3, 4)
        assert torch.equal(out, full)

    def test_nested_list_matrix(self):
        out = per_feature("p", [[1, 2], [3, 4]], 2, 2)
        assert torch.equal(out, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))

    @pytest.mark.parametrize(
        "prefer, expected",
        [("instances", [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]), ("features", [[1.0, 2.0, 3.0]] * 3)],
    )
    def test_ambiguous_length_follows_prefer(self, prefer, expected):
        out = per_feature("p", torch.tensor([1.0, 2.0, 3.0]), 3, 3, prefer)
        assert torch.equal(out, torch.tensor(expected))

    def test_returns_a_new_float32_tensor(self):
        src = torch.tensor([[1, 2], [3, 4]])  # int64 in
        out = per_feature("p", src, 2, 2)
        assert out.dtype == torch.float32
        src_f = torch.ones(2, 2)
        out_f = per_feature("p", src_f, 2, 2)
        src_f.fill_(7.0)
        assert torch.equal(out_f, torch.ones(2, 2)), "result must not alias the input"
        out_s = per_feature("p", 0.5, 2, 3)
        out_s[0, 0] = 9.0  # writable, not an expanded view
        assert out_s[1, 1] == 0.5

    def test_detaches_and_moves_to_cpu(self):
        src = torch.full((2,), 0.5, requires_grad=True)
        out = per_feature("p", src, 2, 3)
        assert not out.requires_grad and out.device.type == "cpu"

    @pytest.mark.parametrize("bad", [[0.1, 0.2], torch.ones(5), torch.ones(4, 3), torch.ones(3, 4, 1), torch.ones(1, 4)])
    def test_wrong_shape_names_the_argument(self, bad):
        with pytest.raises(ValueError, match="my_arg"):
            per_feature("my_arg", bad, 3, 4)

    @pytest.mark.parametrize("bad", ["0.5", None, True, object()])
    def test_wrong_type_names_the_argument(self, bad):
        with pytest.raises(TypeError, match="my_arg"):
            per_feature("my_arg", bad, 3, 4)

    @settings(max_examples=60, deadline=None)
    @given(
        n_inst=st.integers(1, 6),
        n_feat=st.integers(1, 6),
        form=st.sampled_from(["scalar", "instances", "features", "full"]),
        prefer=st.sampled_from(["instances", "features"]),
        seed=st.integers(0, 2**16),
    )
    def test_broadcasting_property(self, n_inst, n_feat, form, prefer, seed):
        g = gen(seed)
        if form == "scalar":
            value = torch.rand((), generator=g)
            expected = value.expand(n_inst, n_feat)
        elif form == "instances":
            value = torch.rand(n_inst, generator=g)
            expected = value[:, None].expand(n_inst, n_feat)
        elif form == "features":
            value = torch.rand(n_feat, generator=g)
            expected = value[None, :].expand(n_inst, n_feat)
        else:
            value = torch.rand(n_inst, n_feat, generator=g)
            expected = value
        if form in ("instances", "features") and n_inst == n_feat:
            # ambiguous: read along `prefer`
            expected = value[:, None].expand(n_inst, n_feat) if prefer == "instances" else value[None, :].expand(n_inst, n_feat)
        out = per_feature("v", value, n_inst, n_feat, prefer)
        assert out.shape == (n_inst, n_feat)
        assert torch.equal(out, expected)
        # The list form gives the same answer as the tensor form.
        if value.dim() > 0:
            assert torch.equal(per_feature("v", value.tolist(), n_inst, n_feat, prefer), out)


# ---------------------------------------------------------------- sparse_uniform


class TestSparseUniform:
    def test_shape_dtype_device(self):
        p = torch.full((3, 4), 0.5)
        x = sparse_uniform(7, p, generator=gen())
        assert x.shape == (7, 3, 4) and x.dtype == torch.float32 and x.device == p.device
        x64 = sparse_uniform(5, p.double(), generator=gen())
        assert x64.dtype == torch.float64

    def test_values_in_unit_interval(self):
        x = sparse_uniform(20_000, torch.full((2, 3), 0.7), generator=gen())
        assert (x >= 0).all() and (x < 1).all()

    def test_density_zero_and_one(self):
        p = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
        x = sparse_uniform(50_000, p, generator=gen(1))
        assert (x[:, p == 0] == 0).all()
        assert (x[:, p == 1] > 0).float().mean() > 1 - 1e-4  # u == 0 exactly is the only zero

    def test_density_per_feature_and_per_instance(self):
        p = torch.tensor([[0.9, 0.3, 0.05, 0.5], [0.01, 0.5, 0.2, 0.7]])
        n = 200_000
        x = sparse_uniform(n, p, generator=gen(2))
        assert_rate((x != 0).double().mean(0), p, n)
        # per instance: the average density over the instance's features
        per_inst = (x != 0).double().mean(dim=(0, 2))
        assert_rate(per_inst, p.double().mean(1), n * p.shape[1])

    @pytest.mark.parametrize("p", [1.0, 0.3, 0.02])
    def test_nonzero_values_are_uniform(self, p):
        x = sparse_uniform(400_000, torch.full((1, 5), p), generator=gen(3))
        v = x[x != 0].double()
        n = v.numel()
        assert n > 1000
        # mean 1/2 (sd 1/sqrt(12)), variance 1/12 (sd of the sample variance sqrt(1/180 - 1/144)/sqrt(n))
        assert abs(v.mean().item() - 0.5) < Z * math.sqrt(1 / 12 / n)
        assert abs(v.var().item() - 1 / 12) < Z * math.sqrt((1 / 80 - 1 / 144) / n)
        # the whole distribution: fraction below each quartile
        for q in (0.25, 0.5, 0.75):
            assert_rate((v < q).double().mean().reshape(1), q, n)

    def test_independent_across_features_and_instances(self):
        p = torch.tensor([[0.3, 0.6, 0.5], [0.4, 0.2, 0.5]])
        n = 200_000
        x = sparse_uniform(n, p, generator=gen(4))
        on = (x != 0).double().reshape(n, -1)
        flat_p = p.reshape(-1).double()
        both = on.T @ on / n  # P(a on and b on)
        for a in range(6):
            for b in range(6):
                if a != b:  # pairs within an instance (features) and across instances
                    assert_rate(both[a, b].reshape(1), flat_p[a] * flat_p[b], n)
        # magnitudes are uncorrelated too
        corr = torch.corrcoef(x.reshape(n, -1).T.double())
        off = corr - torch.diag(torch.diag(corr))
        assert off.abs().max() < Z / math.sqrt(n)

    def test_same_generator_seed_is_deterministic(self):
        p = torch.full((2, 5), 0.3)
        a = sparse_uniform(100, p, generator=gen(11))
        b = sparse_uniform(100, p, generator=gen(11))
        c = sparse_uniform(100, p, generator=gen(12))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)

    def test_global_generator_is_used_without_one(self):
        p = torch.full((2, 5), 0.3)
        torch.manual_seed(5)
        a = sparse_uniform(50, p)
        torch.manual_seed(5)
        b = sparse_uniform(50, p)
        assert torch.equal(a, b)

    @pytest.mark.parametrize("bad, err", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError), ("8", TypeError)])
    def test_bad_batch_size(self, bad, err):
        with pytest.raises(err, match="batch_size"):
            sparse_uniform(bad, torch.full((1, 2), 0.5))

    @pytest.mark.parametrize(
        "bad, err",
        [
            (torch.full((4,), 0.5), ValueError),  # 1-D: must be (n_instances, n_features)
            (torch.full((1, 2, 3), 0.5), ValueError),
            (torch.tensor([[0.5, 1.5]]), ValueError),
            (torch.tensor([[0.5, -0.1]]), ValueError),
            (torch.tensor([[0.5, float("nan")]]), ValueError),
            (torch.tensor([[1, 0]]), TypeError),  # integer dtype
            (0.5, TypeError),  # not a tensor
        ],
    )
    def test_bad_feature_probability(self, bad, err):
        with pytest.raises(err, match="feature_probability"):
            sparse_uniform(4, bad)


class TestSparseFromUniform:
    def test_maps_below_p_to_u_over_p_and_rest_to_zero(self):
        u = torch.tensor([[0.1, 0.5, 0.29, 0.3, 0.95]])
        p = torch.tensor([0.2, 0.5, 0.3, 0.3, 1.0])
        out = sparse_from_uniform(u.clone(), p)
        expected = torch.tensor([[0.5, 0.0, 0.29 / 0.3, 0.0, 0.95]])
        assert torch.allclose(out, expected, atol=1e-6)

    def test_in_place(self):
        u = torch.rand(10, 3, generator=gen())
        out = sparse_from_uniform(u, torch.full((3,), 0.5))
        assert out.data_ptr() == u.data_ptr()

    def test_zero_density_gives_zeros(self):
        u = torch.rand(1000, 4, generator=gen())
        u[0, 0] = 0.0
        out = sparse_from_uniform(u, torch.zeros(4))
        assert torch.equal(out, torch.zeros(1000, 4))
        assert not torch.isnan(out).any()

    def test_matches_sparse_uniform(self):
        p = torch.tensor([[0.2, 0.7], [0.05, 1.0]])
        u = torch.rand((30, 2, 2), generator=gen(9))
        assert torch.equal(sparse_from_uniform(u, p), sparse_uniform(30, p, generator=gen(9)))

    def test_exported_by_module(self):
        assert data.sparse_from_uniform is sparse_from_uniform


# ---------------------------------------------------------------- correlated / anticorrelated


class TestCorrelatedSparse:
    def test_shape(self):
        x = correlated_sparse(9, torch.full((2, 3), 0.5), set_size=4, generator=gen())
        assert x.shape == (9, 2, 12) and x.dtype == torch.float32

    def test_sets_on_and_off_together_with_the_right_marginal(self):
        p = torch.tensor([[0.1, 0.5, 0.8], [0.3, 0.02, 1.0]])
        k, n = 3, 200_000
        x = correlated_sparse(n, p, set_size=k, generator=gen(1))
        on = (x != 0).reshape(n, 2, 3, k)
        # within a set: every feature on, or every feature off (u == 0 aside)
        all_same = (on.all(-1) | (~on).all(-1)).double().mean()
        assert all_same > 1 - 1e-4
        # marginal density of every feature equals its set's probability
        assert_rate(on.double().mean(0).reshape(-1), p[..., None].expand(2, 3, k).reshape(-1), n)

    def test_sets_are_independent_and_values_uniform(self):
        p = torch.tensor([[0.4, 0.5]])
        n = 200_000
        x = correlated_sparse(n, p, set_size=2, generator=gen(2))
        on = (x != 0).double()
        assert_rate((on[:, 0, 0] * on[:, 0, 2]).mean().reshape(1), 0.4 * 0.5, n)
        v = x[x != 0].double()
        assert abs(v.mean().item() - 0.5) < Z * math.sqrt(1 / 12 / v.numel())
        assert abs(v.var().item() - 1 / 12) < Z * math.sqrt((1 / 80 - 1 / 144) / v.numel())
        # values of features in the same set are drawn independently
        both = (on[:, 0, 0] * on[:, 0, 1]).bool()
        c = torch.corrcoef(torch.stack([x[both, 0, 0], x[both, 0, 1]]).double())[0, 1]
        assert abs(c.item()) < Z / math.sqrt(both.sum().item())

    def test_deterministic_with_generator(self):
        p = torch.full((1, 2), 0.5)
        assert torch.equal(correlated_sparse(20, p, 3, gen(4)), correlated_sparse(20, p, 3, gen(4)))

    @pytest.mark.parametrize("bad, err", [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
    def test_bad_set_size(self, bad, err):
        with pytest.raises(err, match="set_size"):
            correlated_sparse(4, torch.full((1, 2), 0.5), bad)

    def test_bad_probability(self):
        with pytest.raises(ValueError, match="feature_probability"):
            correlated_sparse(4, torch.full((1, 2), 1.5), 2)
        with pytest.raises(ValueError, match="batch_size"):
            correlated_sparse(0, torch.full((1, 2), 0.5), 2)


class TestAnticorrelatedSparse:
    def test_shape(self):
        x = anticorrelated_sparse(9, torch.full((2, 3), 0.1), set_size=4, generator=gen())
        assert x.shape == (9, 2, 12)

    def test_at_most_one_active_with_the_right_marginal(self):
        k, n = 4, 200_000
        p = torch.tensor([[0.05, 0.2], [0.25, 0.01]])
        x = anticorrelated_sparse(n, p, set_size=k, generator=gen(3))
        on = (x != 0).reshape(n, 2, 2, k)
        assert on.sum(-1).max() <= 1
        assert_rate(on.double().mean(0).reshape(-1), p[..., None].expand(2, 2, k).reshape(-1), n)
        # the set is active with probability k * p
        assert_rate(on.any(-1).double().mean(0).reshape(-1), (k * p).reshape(-1), n)

    def test_full_density_means_exactly_one_active(self):
        x = anticorrelated_sparse(10_000, torch.full((1, 1), 1 / 3), set_size=3, generator=gen(4))
        active = (x != 0).sum(-1)
        assert (active == 1).double().mean() > 1 - 1e-3

    def test_values_uniform(self):
        x = anticorrelated_sparse(200_000, torch.full((1, 2), 0.2), set_size=2, generator=gen(5))
        v = x[x != 0].double()
        assert abs(v.mean().item() - 0.5) < Z * math.sqrt(1 / 12 / v.numel())
        assert abs(v.var().item() - 1 / 12) < Z * math.sqrt((1 / 80 - 1 / 144) / v.numel())

    def test_probability_above_one_over_set_size_raises(self):
        with pytest.raises(ValueError, match="feature_probability"):
            anticorrelated_sparse(4, torch.full((1, 2), 0.3), set_size=4)

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match="set_size"):
            anticorrelated_sparse(4, torch.full((1, 2), 0.1), 0)
        with pytest.raises(ValueError, match="feature_probability"):
            anticorrelated_sparse(4, torch.full((1, 2), -0.1), 2)
        with pytest.raises(TypeError, match="feature_probability"):
            anticorrelated_sparse(4, [[0.1]], 2)

    def test_deterministic_with_generator(self):
        p = torch.full((1, 2), 0.1)
        assert torch.equal(anticorrelated_sparse(50, p, 3, gen(6)), anticorrelated_sparse(50, p, 3, gen(6)))


@pytest.mark.cuda
def test_generators_on_cuda():
    p = torch.full((2, 3), 0.3, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    for x in (sparse_uniform(10, p, g), correlated_sparse(10, p, 2, g), anticorrelated_sparse(10, p, 2, g)):
        assert x.device.type == "cuda"
