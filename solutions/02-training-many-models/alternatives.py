"""Lesson 2: correct implementations written differently from the solution; each keeps full marks.

Each is source text run in a namespace like the notebook's (``torch``, ``math``, ``time``, and a correct
``pick_device`` for the training loops), as a learner's cell would be.
"""

from __future__ import annotations

import itertools
import linecache
import math
import time
from typing import Any, Callable

import torch

_count = itertools.count()

_PICK_DEVICE = """
def pick_device(preferred=None):
    if preferred is not None:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{preferred!r}: no CUDA GPU here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"{preferred!r}: MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
"""


def _define(name: str, source: str) -> Callable[..., Any]:
    """Run ``source`` as a notebook cell would (registered with linecache, so tracebacks show its lines)."""
    filename = f"<alternative {next(_count)} of {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    ns: dict[str, Any] = {"torch": torch, "math": math, "time": time, "__name__": "alternatives"}
    exec(compile(_PICK_DEVICE, "<pick_device>", "exec"), ns)  # noqa: S102 - the course's own code
    exec(compile(source, filename, "exec"), ns)  # noqa: S102
    return ns[name]


CORRECT = {
    "lr_factor": [
        # float32 torch arithmetic: "should be 0.0495156, got 0.0495156" must not happen any more
        ("def lr_factor(schedule, step, steps):\n"
         "    t = torch.tensor(step / steps, dtype=torch.float32)\n"
         "    if schedule == 'constant':\n        return 1.0\n"
         "    if schedule == 'linear':\n        return float(1 - t)\n"
         "    if schedule == 'cosine':\n        return float((1 + torch.cos(torch.pi * t)) / 2)\n"
         "    raise ValueError(f'unknown schedule {schedule!r}')"),
        ("def lr_factor(schedule, step, steps):\n"
         "    table = {'constant': lambda f: 1.0, 'linear': lambda f: 1.0 - f,\n"
         "             'cosine': lambda f: math.cos(math.pi * f / 2) ** 2}\n"
         "    if schedule not in table:\n        raise ValueError(schedule)\n"
         "    return table[schedule](step / steps)"),
        ("def lr_factor(schedule, step, steps):\n"
         "    match schedule:\n"
         "        case 'constant':\n            return 1\n"
         "        case 'linear':\n            return (steps - step) / steps\n"
         "        case 'cosine':\n            return 0.5 + 0.5 * math.cos(step * math.pi / steps)\n"
         "    raise ValueError('no such schedule: ' + schedule)"),
    ],
    "pick_device": [
        # validates by allocating a tensor on the device
        ("def pick_device(preferred=None):\n"
         "    if preferred is None:\n"
         "        for name, ok in (('cuda', torch.cuda.is_available()), ('mps', torch.backends.mps.is_available())):\n"
         "            if ok:\n                return torch.device(name)\n"
         "        return torch.device('cpu')\n"
         "    device = torch.device(preferred)\n"
         "    try:\n        torch.zeros(1, device=device)\n"
         "    except Exception as err:\n"
         "        raise ValueError(f'device {preferred!r} is not available: {err}') from err\n"
         "    return device"),
        # torch.accelerator
        ("def pick_device(preferred=None):\n"
         "    if preferred is not None:\n"
         "        device = torch.device(preferred)\n"
         "        if device.type != 'cpu':\n"
         "            acc = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None\n"
         "            if acc is None or acc.type != device.type:\n"
         "                raise ValueError(f'{device} is not available')\n"
         "        return device\n"
         "    acc = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None\n"
         "    return torch.device(acc.type) if acc is not None else torch.device('cpu')"),
        # string work, then one torch.device, with tensor.to as validation
        ("def pick_device(preferred=None):\n"
         "    if preferred is None:\n"
         "        name = 'cuda' if torch.cuda.is_available() else ('mps' if torch.backends.mps.is_available() else 'cpu')\n"
         "        return torch.device(name)\n"
         "    kind = str(preferred).split(':')[0]\n"
         "    available = {'cpu': True, 'cuda': torch.cuda.is_available(), 'mps': torch.backends.mps.is_available()}\n"
         "    if not available.get(kind, True):\n        raise ValueError(f'{preferred} is not available here')\n"
         "    torch.empty(0).to(preferred)\n"
         "    return torch.device(preferred)"),
        # availability as a table, device_count as well as is_available
        ("def pick_device(preferred=None):\n"
         "    has = {'cuda': torch.cuda.is_available() and torch.cuda.device_count() > 0,\n"
         "           'mps': torch.backends.mps.is_available(), 'cpu': True}\n"
         "    if preferred is None:\n"
         "        return torch.device(next(k for k in ('cuda', 'mps', 'cpu') if has[k]))\n"
         "    device = preferred if isinstance(preferred, torch.device) else torch.device(str(preferred))\n"
         "    if not has.get(device.type, True):\n"
         "        raise ValueError(f'{device} is not available on this machine')\n"
         "    return device"),
    ],
    "train": [
        # manual loss, a list of losses stacked at the end, LambdaLR for the schedule
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    device = pick_device(device)\n"
         "    model = model.to(device)\n"
         "    gen = torch.Generator(device=device)\n"
         "    gen.manual_seed(seed)\n"
         "    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)\n"
         "    sched = None if lr_schedule is None else torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_schedule(s, steps))\n"
         "    history = []\n"
         "    for _ in range(steps):\n"
         "        x = model.generate_batch(batch_size, generator=gen)\n"
         "        x_hat = model(x)\n"
         "        per = (model.importance * (x - x_hat) ** 2).mean(dim=(0, 2))\n"
         "        opt.zero_grad(set_to_none=False)\n"
         "        per.sum().backward()\n"
         "        opt.step()\n"
         "        if sched is not None:\n            sched.step()\n"
         "        history.append(per.detach().cpu())\n"
         "    return torch.stack(history)"),
        # model.loss, lr set through param_groups[0], float64 copy of the history
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    device = pick_device(device)\n"
         "    model.to(device)\n"
         "    generator = torch.Generator(device).manual_seed(seed)\n"
         "    optimizer = torch.optim.AdamW(params=list(model.parameters()), lr=lr, weight_decay=weight_decay)\n"
         "    losses = torch.zeros(steps, model.n_instances, dtype=torch.float64)\n"
         "    for step in range(steps):\n"
         "        optimizer.param_groups[0]['lr'] = lr if lr_schedule is None else lr * lr_schedule(step, steps)\n"
         "        optimizer.zero_grad()\n"
         "        x = model.generate_batch(batch_size, generator=generator)\n"
         "        x_hat = model(x)\n"
         "        model.loss(x, x_hat).backward()\n"
         "        optimizer.step()\n"
         "        with torch.no_grad():\n"
         "            losses[step] = model.per_instance_loss(x, x_hat).double().cpu()\n"
         "    return losses"),
        # torch.device from the argument by hand, loss computed per instance in a loop
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    device = torch.device(device) if device is not None else pick_device()\n"
         "    model.to(device)\n"
         "    rng = torch.Generator(device=device).manual_seed(seed)\n"
         "    adamw = torch.optim.AdamW(model.parameters(), lr, weight_decay=weight_decay)\n"
         "    out = torch.empty(steps, model.n_instances)\n"
         "    for s in range(steps):\n"
         "        for g in adamw.param_groups:\n"
         "            g['lr'] = lr * (lr_schedule(s, steps) if lr_schedule else 1.0)\n"
         "        x = model.generate_batch(batch_size, rng)\n"
         "        x_hat = model(x)\n"
         "        per = torch.stack([model.per_instance_loss(x, x_hat)[k] for k in range(model.n_instances)])\n"
         "        loss = sum(per[k] for k in range(model.n_instances))\n"
         "        adamw.zero_grad()\n"
         "        loss.backward()\n"
         "        adamw.step()\n"
         "        out[s] = per.detach().to('cpu')\n"
         "    return out"),
        # the history as Python numbers (taken before the update), one param group's lr set by hand
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    dev = pick_device(device)\n"
         "    model.to(dev)\n"
         "    gen = torch.Generator(device=dev)\n"
         "    gen.manual_seed(seed)\n"
         "    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)\n"
         "    rows = []\n"
         "    for step in range(steps):\n"
         "        if lr_schedule is not None:\n"
         "            opt.param_groups[0]['lr'] = lr * lr_schedule(step, steps)\n"
         "        x = model.generate_batch(batch_size, generator=gen)\n"
         "        per = model.per_instance_loss(x, model(x))\n"
         "        rows.append(per.tolist())\n"
         "        opt.zero_grad(set_to_none=True)\n"
         "        per.sum().backward()\n"
         "        opt.step()\n"
         "    return torch.tensor(rows, dtype=torch.float32).reshape(steps, model.n_instances)"),
    ],
    "measure_throughput": [
        # CUDA events on a GPU, perf_counter elsewhere
        ("def measure_throughput(train_fn, model, steps, device, warmup_steps=5):\n"
         "    device = torch.device(device)\n"
         "    def sync():\n"
         "        if device.type == 'cuda':\n            torch.cuda.synchronize()\n"
         "        elif device.type == 'mps':\n            torch.mps.synchronize()\n"
         "    train_fn(model, warmup_steps)\n"
         "    sync()\n"
         "    if device.type == 'cuda':\n"
         "        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)\n"
         "        start.record()\n"
         "        train_fn(model, steps)\n"
         "        end.record()\n"
         "        torch.cuda.synchronize()\n"
         "        seconds = start.elapsed_time(end) / 1000\n"
         "    else:\n"
         "        t0 = time.perf_counter()\n"
         "        train_fn(model, steps)\n"
         "        sync()\n"
         "        seconds = time.perf_counter() - t0\n"
         "    rate = steps / seconds\n"
         "    return {'steps_per_second': rate, 'instance_steps_per_second': rate * model.n_instances}"),
        # torch.accelerator.synchronize for any accelerator, time.monotonic, string prefixes
        ("def measure_throughput(train_fn, model, steps, device, warmup_steps=5):\n"
         "    on_gpu = str(device).split(':')[0] in ('cuda', 'mps')\n"
         "    train_fn(model, warmup_steps)\n"
         "    if on_gpu:\n        torch.accelerator.synchronize()\n"
         "    t0 = time.monotonic()\n"
         "    train_fn(model, steps)\n"
         "    if on_gpu:\n        torch.accelerator.synchronize()\n"
         "    elapsed = time.monotonic() - t0\n"
         "    return dict(steps_per_second=steps / elapsed, instance_steps_per_second=steps * model.n_instances / elapsed)"),
        # nanoseconds, numpy floats
        ("import numpy as np\n"
         "def measure_throughput(train_fn, model, steps, device, warmup_steps=5):\n"
         "    kind = torch.device(device).type\n"
         "    wait = {'cuda': torch.cuda.synchronize, 'mps': torch.mps.synchronize}.get(kind, lambda: None)\n"
         "    train_fn(model, warmup_steps)\n"
         "    wait()\n"
         "    t0 = time.perf_counter_ns()\n"
         "    train_fn(model, steps)\n"
         "    wait()\n"
         "    seconds = np.float64(time.perf_counter_ns() - t0) / 1e9\n"
         "    sps = steps / seconds\n"
         "    return {'steps_per_second': float(sps), 'instance_steps_per_second': float(sps * model.n_instances)}"),
    ],
}


ALTERNATIVES = {name: [_define(name, source) for source in sources] for name, sources in CORRECT.items()}
