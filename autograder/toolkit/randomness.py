"""Check inputs a submission cannot predict: every property draws them from a secret.

Fixed, seeded check inputs can be recorded at home (run the course's own checks
with the reference library as the answers) and replayed from a table. So each
grading run draws a fresh 128-bit secret in the trusted grader
(:func:`new_secret`), never derived from anything installed, and every property
gets its own seed from it (:func:`property_seed`, set by the runner, which also
seeds torch's global generator with it). Inside a property, checks draw inputs
with :func:`secret_gen` or :func:`seed`::

    x = call(submission, 4096, p, generator=secret_gen(1))  # a generator no one can predict
    ref = supercourse.ToyModel(..., seed=secret_seed(2))  # a reference model no one can predict

The ``salt`` tells apart the draws of one property. The secret is written to
the grading report, so an instructor can reproduce a grade exactly
(``supercourse check --seed``, ``--SandboxedGrade.seed``).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import secrets
from typing import Iterator

import torch

__all__ = ["secret_gen", "secret_seed", "derive", "new_secret", "property_seed", "parse_secret", "SECRET_BITS"]

SECRET_BITS = 128

_CURRENT: contextvars.ContextVar[int | None] = contextvars.ContextVar("supercourse_property_seed", default=None)


def derive(*parts: object) -> int:
    """A 63-bit seed from ``parts`` (the secret, names, salts): a keyed hash, so no part can be guessed from it."""
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def new_secret() -> int:
    """A fresh secret for one grading run (from the operating system's random source)."""
    return secrets.randbits(SECRET_BITS)


def parse_secret(text: str | int) -> int:
    """A secret given back by an instructor (as the hex the report shows, or an int)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str):
        try:
            value = int(text.strip().removeprefix("0x"), 16)
        except ValueError:
            raise ValueError(f"seed must be the hexadecimal secret a grading report shows, got {text!r}") from None
    else:
        raise TypeError(f"seed must be a hexadecimal string or an int, got {type(text).__name__}")
    if not 0 <= value < 1 << SECRET_BITS:
        raise ValueError(f"seed must be a {SECRET_BITS}-bit number, got {text!r}")
    return value


@contextlib.contextmanager
def property_seed(secret: int, exercise_id: str, prop: str) -> Iterator[int]:
    """Within this block, :func:`secret_gen`/:func:`secret_seed` draw from ``(secret, exercise, property)``, and so does torch's global generator."""
    base = derive(secret, exercise_id, prop)
    token = _CURRENT.set(base)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive(base, "global"))
            yield base
    finally:
        _CURRENT.reset(token)


def secret_seed(salt: object = 0) -> int:
    """An unpredictable 63-bit seed for the current property's draw ``salt``."""
    base = _CURRENT.get()
    if base is None:
        raise RuntimeError("check inputs are drawn inside a graded property: the runner sets the property's secret seed")
    return derive(base, salt)


def secret_gen(salt: object = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`secret_seed` ``(salt)``."""
    return torch.Generator().manual_seed(secret_seed(salt))
