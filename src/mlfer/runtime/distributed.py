"""Several processes started by torchrun: the process group, ranks, sharding and gathering.

A run without torchrun (no ``WORLD_SIZE`` above 1 in the environment) never starts a
process group, and every helper here is then the identity or a no-op, so single-process
code paths are unchanged.

Sharding rules (see docs/scaling.md):

- Training: every process draws the same global permutation (the same seeded generator)
  and takes its even, contiguous share of each global batch of ``train.batch_size`` rows
  (shares differ by at most one row). :func:`global_batch_loss` weights each share so that
  the gradient DistributedDataParallel averages is the gradient of the whole batch.
- Evaluation, feature extraction and prediction: each process takes a contiguous block of
  whole batches (:class:`OrderedShardSampler`), so it runs exactly the batches one process
  would, and :func:`gather_rows` concatenates the outputs in rank order, which is input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from mlfer.core.errors import MlferError
from mlfer.runtime.launch import environment_int, launched
from mlfer.runtime.reproduce import resolve_device

#: What torchrun sets for each process besides ``WORLD_SIZE`` and ``LOCAL_RANK`` (read by
#: ``init_process_group``'s ``env://`` rendezvous).
RENDEZVOUS = ("RANK", "MASTER_ADDR", "MASTER_PORT")
T = TypeVar("T")


@contextmanager
def process_group(device: str = "auto") -> Iterator[torch.device]:
    """Join the torchrun job of this process for the duration of the ``with`` block.

    The backend is NCCL when ``device`` resolves to CUDA (each process then takes GPU
    ``LOCAL_RANK``) and gloo on the CPU. Without torchrun, or inside a group already
    started, it only resolves the device.

    Args:
        device: ``auto``, ``cpu`` or ``cuda`` (the run's ``train.device``).

    Yields:
        The device this process computes on.
    """
    target = resolve_device(device)
    if not launched() or dist.is_initialized():
        yield target
        return
    for name in RENDEZVOUS:
        if not os.environ.get(name):
            raise MlferError("torchrun sets this variable; start the command with torchrun", field=name)
    local = environment_int("LOCAL_RANK")
    gpu = target.type == "cuda"
    if gpu:
        if target.index is not None and target.index != local:
            raise MlferError(
                f"under torchrun each process takes GPU LOCAL_RANK; give cuda or auto, not {device}", field="device"
            )
        if local >= torch.cuda.device_count():
            raise MlferError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs here", field="LOCAL_RANK")
        target = torch.device("cuda", local)
        torch.cuda.set_device(target)
    dist.init_process_group("nccl" if gpu else "gloo", device_id=target if gpu else None)
    try:
        yield target
    finally:
        dist.destroy_process_group()


def world_size() -> int:
    """Number of processes in the job (1 without torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this is process 0, the one that writes outputs, logs and progress bars."""
    return rank() == 0


def is_local_main() -> bool:
    """Whether this is the first process on its node (``LOCAL_RANK`` 0)."""
    return not dist.is_initialized() or environment_int("LOCAL_RANK", default=0) == 0


def barrier() -> None:
    """Wait until every process reaches this point."""
    if dist.is_initialized():
        dist.barrier()


def on_main(action: Callable[[], T]) -> T | None:
    """Run ``action`` on process 0 only; the others wait for it.

    When it raises :class:`MlferError`, process 0 re-raises it and the others stop with
    exit status 2 (without repeating the message), so no process is left waiting.
    """
    if not dist.is_initialized():
        return action()
    result, failed = None, None
    if is_main():
        try:
            result = action()
        except MlferError as error:
            failed = error
    flag = [failed is not None]
    dist.broadcast_object_list(flag, src=0)
    if failed is not None:
        raise failed
    if flag[0]:
        raise SystemExit(2)
    return result


def agree(value: Any, what: str) -> None:
    """Refuse to go on when the processes see different values of ``what`` (a folder each
    node reads on its own disk, say), instead of falling out of step later."""
    if not dist.is_initialized():
        return
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    if any(other != values[0] for other in values):
        raise MlferError(
            f"the processes see different values ({values}); put it where every node reads the same", field=what
        )


def even_split(count: int, parts: int, part: int) -> slice:
    """The ``part``-th of ``parts`` contiguous pieces of ``range(count)``, whose sizes differ by at most one."""
    size, extra = divmod(count, parts)
    start = part * size + min(part, extra)
    return slice(start, start + size + (part < extra))


def rank_block(count: int) -> slice:
    """This process's contiguous block of ``count`` items (empty when there are fewer items than processes)."""
    return even_split(count, world_size(), rank())


def rank_share(size: int) -> slice | None:
    """This process's share of a global batch of ``size`` rows, or None when the batch has
    fewer rows than there are processes (every process then skips it)."""
    return rank_block(size) if size >= world_size() else None


def check_global_batch(batch_size: int) -> None:
    """Refuse a global batch with fewer rows than there are processes to share it."""
    if batch_size < world_size():
        raise MlferError(
            f"a batch of {batch_size} cannot be shared by {world_size()} processes; use at least {world_size()}",
            field="train.batch_size",
        )


def training_steps(count: int, batch_size: int) -> int:
    """Optimiser steps per pass over ``count`` rows in global batches of ``batch_size``:
    one per batch, less a last batch smaller than the number of processes."""
    steps, last = divmod(count, batch_size)
    return steps + int(last >= world_size() if last else 0)


class ShardedBatches:
    """This process's share of each global batch of a batch source (frozen mode).

    Args:
        batches: an iterable of ``(inputs, targets)`` global batches, identical on every
            process (shuffled by a generator seeded alike).
        count: rows per pass.
        batch_size: rows per global batch.
    """

    def __init__(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], count: int, batch_size: int) -> None:
        self.batches, self.count, self.batch_size = batches, count, batch_size

    def __len__(self) -> int:
        return training_steps(self.count, self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, targets in self.batches:
            share = rank_share(len(targets))
            if share is not None:
                yield inputs[share], targets[share]


class GlobalBatchSampler(Sampler[list[int]]):
    """A DataLoader ``batch_sampler``: a permutation drawn from ``generator`` (the same on
    every process), cut into global batches, of which this process gets its even share.

    Args:
        count: rows of the dataset.
        batch_size: rows per global batch (``train.batch_size``).
        generator: the run's CPU generator, seeded alike on every process.
    """

    def __init__(self, count: int, batch_size: int, generator: torch.Generator) -> None:
        self.count, self.batch_size, self.generator = count, batch_size, generator

    def __len__(self) -> int:
        return training_steps(self.count, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.count, generator=self.generator).tolist()
        for start in range(0, self.count, self.batch_size):
            batch = order[start : start + self.batch_size]
            share = rank_share(len(batch))
            if share is not None:
                yield batch[share]


def ordered_shard(count: int, batch_size: int) -> slice:
    """This process's rows of an ordered pass over ``count`` rows: a contiguous block of
    whole batches of ``batch_size``, so that it runs the very batches one process would."""
    batches = -(-count // batch_size)
    block = even_split(batches, world_size(), rank())
    return slice(min(block.start * batch_size, count), min(block.stop * batch_size, count))


class OrderedShardSampler(Sampler[int]):
    """A DataLoader ``sampler`` for evaluation, feature extraction and prediction: this
    process's rows (:func:`ordered_shard`), in order, with no padding; :func:`gather_rows`
    puts the outputs of all processes back in input order.

    Args:
        count: rows of the dataset.
        batch_size: the DataLoader's batch size.
    """

    def __init__(self, count: int, batch_size: int) -> None:
        shard = ordered_shard(count, batch_size)
        self.rows = range(shard.start, shard.stop)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows)


def _collective_device() -> torch.device:
    """Where tensors must be for collectives: this process's GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(rows: torch.Tensor | None) -> torch.Tensor | None:
    """Every process's ``rows`` concatenated along the first dimension in rank order, on every process.

    Shards may differ in length and may be None (a process with nothing to contribute);
    the padding the collective needs is dropped. None when every process gave None.
    """
    if not dist.is_initialized():
        return rows
    shapes: list[Any] = [None] * world_size()
    dist.all_gather_object(shapes, None if rows is None else (tuple(rows.shape), rows.dtype))
    present = [shape for shape in shapes if shape is not None]
    if not present:
        return None
    (first_shape, dtype), longest = present[0], max(shape[0][0] for shape in present)
    device = _collective_device()
    padded = torch.zeros((longest, *first_shape[1:]), dtype=dtype, device=device)
    if rows is not None:
        padded[: len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    gathered = torch.cat([part[: shape[0][0]] for part, shape in zip(parts, shapes) if shape is not None])
    return gathered.to(rows.device if rows is not None else "cpu")


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed element-wise over all processes (a copy; the input is unchanged)."""
    if not dist.is_initialized():
        return values
    total = values.to(_collective_device(), copy=True)
    dist.all_reduce(total)
    return total.to(values.device)


def global_batch_loss(loss: torch.Tensor, rows: int) -> torch.Tensor:
    r"""The loss to back-propagate on this process's ``rows`` of a global batch.

    DistributedDataParallel averages gradients over the :math:`W` processes, so each mean
    loss :math:`\bar L_r` over :math:`n_r` rows is weighted by its share of the batch:

    .. math::
        L_r = \bar L_r \, \frac{n_r W}{\sum_{s=1}^{W} n_s},
        \qquad \frac{1}{W} \sum_r \nabla L_r = \nabla \frac{\sum_r n_r \bar L_r}{\sum_r n_r}

    which is the gradient one process gets on the whole batch, for any split (rows left
    out as unreadable included). One process: ``loss`` unchanged.

    Args:
        loss: this process's mean loss over its rows.
        rows: the number of rows it was averaged over.
    """
    if not dist.is_initialized():
        return loss
    total = sum_across(loss.detach().new_full((), float(rows)))
    return loss * (rows * world_size() / total)


class EpochDataParallel(DistributedDataParallel):
    """DistributedDataParallel for the epoch loop: training synchronises gradients; in
    evaluation mode the forward runs the wrapped module alone (processes evaluate shards of
    different sizes), and switching to evaluation gives every process the buffers of
    process 0 (BatchNorm statistics), whose model is the one saved."""

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self.training:
            return self.module(*inputs, **kwargs)
        return super().forward(*inputs, **kwargs)

    def train(self, mode: bool = True) -> EpochDataParallel:
        if not mode:
            for buffer in self.module.buffers():
                dist.broadcast(buffer, src=0)
        return super().train(mode)


def wrap_data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in :class:`EpochDataParallel` under torchrun; the module itself otherwise."""
    if not dist.is_initialized():
        return module
    return EpochDataParallel(module, device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None)
