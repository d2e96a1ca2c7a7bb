"""A training step replayed as one CUDA graph: one launch instead of hundreds of small kernels.

A ``small`` step at batch 128 on an H200 launches hundreds of kernels, and the host, not the GPU,
set its pace: 24.9 ms a step compiled, 7.0 ms replayed from a graph (docs/RESULTS.md, "Training
speed on the GPU"). ``CapturedStep`` records a step function once (forward, loss, backward,
gradient clipping, the fused AdamW update) and then replays it: each call copies the new batch
into the graph's input buffers, replays, and returns the graph's own output tensors, which the
next call overwrites, so a caller reads them before the next call.

What a graph needs from the step it records (PyTorch's "whole network capture"):
- it has run eagerly first, so that lazy state exists outside the graph (AdamW's moments, the
  compiled kernels, cuDNN's algorithm choices);
- every value that changes between steps is a device tensor it reads, never a Python number baked
  into a kernel's arguments: the learning rate is a tensor (``tensor_lr``), set with ``fill_``;
- the tensors it reads are the ones it was recorded with: loading new optimiser state makes new
  tensors, so the owner drops the graph then and records a new one.

Each graph keeps its own memory pool (its activations) while it lives: a population holds one per
member. Graphs could share a pool, but in torch 2.11 recording into a shared pool after another
graph of it had been freed failed an allocator assertion.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


def tensor_lr(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Make each group's learning rate a 0-d tensor on ``device`` (in place) that a recorded step reads."""
    for group in optimizer.param_groups:
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), device=device)


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set every group's learning rate: tensors in place (a recorded step reads them), numbers by assignment."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)  # a kernel with the value as its argument: no copy, no wait
        else:
            group["lr"] = value


def plain_lr(optimizer_state: dict) -> dict:
    """An optimiser ``state_dict()`` with tensor learning rates as numbers, as an eager optimiser saves them."""
    for group in optimizer_state["param_groups"]:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"] = float(group["lr"])
    return optimizer_state


@contextlib.contextmanager
def _capturable(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """AdamW refuses to be recorded unless its groups say ``capturable``; the fused update is the same
    either way, and an eager step of a capturable optimiser warns, so the flag is set for the recording only."""
    flags = [group["capturable"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["capturable"] = True
    try:
        yield
    finally:
        for group, flag in zip(optimizer.param_groups, flags, strict=True):
            group["capturable"] = flag


class CapturedStep:
    """``step(*inputs) -> outputs`` recorded once as a CUDA graph; calling it replays the graph.

    ``inputs`` are tensors whose shapes and dtypes every later call repeats (``matches`` says whether
    they do); ``optimizer`` is the one the step updates. Recording runs nothing: the first call
    replays, like every other.
    """

    def __init__(self, step: Callable[..., tuple[torch.Tensor, ...]], inputs: tuple[torch.Tensor, ...],
                 optimizer: torch.optim.Optimizer):
        self.inputs = tuple(x.clone() for x in inputs)
        self.graph = torch.cuda.CUDAGraph()
        with _capturable(optimizer), torch.cuda.graph(self.graph):
            self.outputs = step(*self.inputs)

    def matches(self, *inputs: torch.Tensor) -> bool:
        return all(x.shape == s.shape and x.dtype == s.dtype for x, s in zip(inputs, self.inputs, strict=True))

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for static, x in zip(self.inputs, inputs, strict=True):
            static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.outputs
