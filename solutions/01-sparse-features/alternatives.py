"""Lesson 1: correct implementations written differently from the solution; each keeps full marks.

The ToyModel alternatives share :class:`ToyModel` below (the solution's model, written out), each
replacing its initialisation or its forward pass; :mod:`.mistakes` builds its wrong models on the
same base.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from supercourse.data import per_feature

# --------------------------------------------------------------------------- generate_batch


def gb_where_bernoulli(batch_size, feature_probability, generator=None):
    """A Bernoulli mask and torch.where."""
    p = feature_probability
    shape = (batch_size, *p.shape)
    mask = torch.bernoulli(p.detach().expand(shape), generator=generator).bool()
    values = torch.rand(shape, generator=generator, dtype=p.dtype, device=p.device)
    return torch.where(mask, values, torch.zeros_like(values))


def gb_float64_inside(batch_size, feature_probability, generator=None):
    """Draws in float64, casts back to feature_probability's dtype."""
    p = feature_probability.detach().double()
    u = torch.rand((batch_size, *p.shape), generator=generator, dtype=torch.float64)
    v = torch.rand((batch_size, *p.shape), generator=generator, dtype=torch.float64)
    return (v * (u < p)).to(feature_probability.dtype)


def gb_uniform_in_place(batch_size, feature_probability, generator=None):
    """uniform_ on fresh tensors (in place on its own tensors, never on the argument), values drawn first."""
    p = feature_probability
    values = torch.empty(batch_size, *p.shape, dtype=p.dtype, device=p.device).uniform_(0, 1, generator=generator)
    keep = torch.empty_like(values).uniform_(generator=generator).lt(p).to(p.dtype)
    return keep * values


def gb_one_draw_rescaled(batch_size, feature_probability, generator=None):
    """One uniform u decides both: active when u < p, value u / p (uniform on [0, 1) given u < p)."""
    p = feature_probability.detach()
    u = torch.rand((batch_size, *p.shape), generator=generator, dtype=p.dtype, device=p.device)
    safe = torch.where(p > 0, p, torch.ones_like(p))
    return torch.where(u < p, u / safe, torch.zeros_like(u))


def gb_loop_over_instances(batch_size, feature_probability, generator=None):
    """One instance at a time, stacked along dim 1."""
    p = feature_probability.detach()
    columns = []
    for k in range(p.shape[0]):
        active = torch.rand(batch_size, p.shape[1], generator=generator, dtype=p.dtype, device=p.device) < p[k]
        columns.append(torch.rand(batch_size, p.shape[1], generator=generator, dtype=p.dtype, device=p.device) * active)
    return torch.stack(columns, dim=1)


# --------------------------------------------------------------------------- ToyModel


class ToyModel(nn.Module):
    """The solution's model, written out: the base of every ToyModel alternative and mistake."""

    def __init__(self, n_features, n_hidden, n_instances=1, feature_probability=1.0, importance=1.0,
                 activation="relu"):
        super().__init__()
        if activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', got {activation!r}")
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances
        self.activation = activation
        self.register_buffer(
            "feature_probability", per_feature("feature_probability", feature_probability, n_instances, n_features)
        )
        self.register_buffer(
            "importance", per_feature("importance", importance, n_instances, n_features, prefer="features")
        )
        self.init_parameters()

    def init_parameters(self):
        std = math.sqrt(2.0 / (self.n_features + self.n_hidden))
        self.W = nn.Parameter(std * torch.randn(self.n_instances, self.n_hidden, self.n_features))
        self.b_final = nn.Parameter(torch.zeros(self.n_instances, self.n_features))

    def act(self, pre):
        return torch.relu(pre) if self.activation == "relu" else pre

    def forward(self, x):
        h = torch.einsum("bif,ihf->bih", x, self.W)
        return self.act(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def toy_model(name, forward=None, init=None, base=ToyModel):
    """A ToyModel with its forward pass and/or its parameter initialisation replaced."""
    attrs = {"__doc__": f"ToyModel variant {name}"}
    if forward is not None:
        attrs["forward"] = forward
    if init is not None:
        attrs["init_parameters"] = init
    return type("ToyModel", (base,), attrs)


def _init_loop_normal(self):
    std = math.sqrt(2.0 / (self.n_features + self.n_hidden))
    self.W = nn.Parameter(torch.empty(self.n_instances, self.n_hidden, self.n_features))
    with torch.no_grad():
        for k in range(self.n_instances):
            nn.init.normal_(self.W[k], 0.0, std)
    self.b_final = nn.Parameter(torch.zeros(self.n_instances, self.n_features))


def _init_xavier_per_instance(self):
    W = torch.empty(self.n_instances, self.n_hidden, self.n_features)
    for k in range(self.n_instances):
        nn.init.xavier_normal_(W[k])
    self.W = nn.Parameter(W)
    self.b_final = nn.Parameter(W.new_zeros(self.n_instances, self.n_features))


def _forward_bmm(self, x):
    xt = x.transpose(0, 1)  # (k, batch, n)
    h = torch.bmm(xt, self.W.transpose(1, 2))  # (k, batch, m)
    out = (torch.bmm(h, self.W) + self.b_final[:, None, :]).transpose(0, 1)
    return torch.relu(out) if self.activation == "relu" else out


def _forward_matmul(self, x):
    h = self.W.unsqueeze(0) @ x.unsqueeze(-1)  # (batch, k, m, 1)
    out = (self.W.transpose(-1, -2).unsqueeze(0) @ h).squeeze(-1) + self.b_final
    return out.clamp(min=0) if self.activation == "relu" else out


def _forward_loop(self, x):
    outs = []
    for k in range(self.n_instances):
        h = x[:, k] @ self.W[k].T
        outs.append(h @ self.W[k] + self.b_final[k])
    out = torch.stack(outs, dim=1)
    return torch.where(out > 0, out, torch.zeros_like(out)) if self.activation == "relu" else out


def _forward_gram(self, x):
    """Through the Gram matrix W^T W (n x n per instance), with F.relu."""
    gram = torch.einsum("ihf,ihg->ifg", self.W, self.W)
    out = torch.einsum("bif,ifg->big", x, gram) + self.b_final
    return torch.nn.functional.relu(out) if self.activation == "relu" else out


# --------------------------------------------------------------------------- importance_loss


def loss_einsum(x, x_hat, importance):
    return torch.einsum("if,bif->", importance, (x - x_hat) ** 2) / (x.shape[0] * x.shape[2])


def loss_float64_inside(x, x_hat, importance):
    err = (x.double() - x_hat.double()) ** 2 * importance.double()
    return err.mean(dim=(0, 2)).sum().to(torch.promote_types(x_hat.dtype, importance.dtype))


def loss_loop_over_instances(x, x_hat, importance):
    return sum(((importance[k] * (x[:, k] - x_hat[:, k]) ** 2).mean() for k in range(x.shape[1])),
               torch.zeros((), dtype=x.dtype))


def loss_mean_times_instances(x, x_hat, importance):
    """The mean over everything, times the number of instances (the same sum over instances)."""
    return (importance * (x_hat - x).pow(2)).mean() * x.shape[1]


ALTERNATIVES = {
    "generate_batch": [gb_where_bernoulli, gb_float64_inside, gb_uniform_in_place, gb_one_draw_rescaled,
                       gb_loop_over_instances],
    "ToyModel": [
        toy_model("bmm", init=_init_loop_normal, forward=_forward_bmm),
        toy_model("matmul", init=_init_xavier_per_instance, forward=_forward_matmul),
        toy_model("loop", forward=_forward_loop),
        toy_model("gram", forward=_forward_gram),
    ],
    "importance_loss": [loss_einsum, loss_float64_inside, loss_loop_over_instances, loss_mean_times_instances],
}
