"""The epoch loop of both modes: BCE with logits (eq. 2), Adam, step decay, a test pass per
epoch, the resume state at most once a minute and after the last epoch, and a stop on a non-finite loss."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from mlfer.core.config import TrainConfig
from mlfer.core.errors import MlferError
from mlfer.evaluation.metrics import compute_metrics
from mlfer.runtime.distributed import gather_rows, global_batch_loss, is_main, sum_across
from mlfer.runtime.progress import show_progress
from mlfer.train.state import LAST_DIR, Resumable, load_state, save_state

#: Feature rows per forward pass when evaluating cached features.
FEATURE_EVAL_CHUNK = 4096


def enable_huge_pages() -> None:
    """Let PyTorch's CPU allocator back allocations of 2 MB and more with transparent huge
    pages (``THP_MEM_ALLOC_ENABLE=1``, unless the variable is already set).

    Each step's gradients are fresh tensors (``zero_grad(set_to_none=True)``): 114 MB for the
    RAF-ML head, whose 4 kB pages the kernel would fault in one by one; with huge pages the
    head's step takes about a fifth less time on the CPU (docs/benchmarks.md). PyTorch reads
    the variable once, at the process's first tensor allocation, so the training commands
    call this first; later in a process it changes nothing.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


class Batches(Protocol):
    """What the loop needs from a source of mini-batches: their count, and a fresh pass of
    ``(inputs, targets)`` pairs (0/1, or soft in training) each time it is iterated (once per epoch).

    :class:`FeatureBatches`, :class:`LoaderBatches`, :class:`~mlfer.train.resident.ResidentBatches`
    and :class:`~mlfer.runtime.distributed.ShardedBatches` are such sources.
    """

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def target_tensor(labels: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, C) 0/1 labels (or soft targets) as float32 targets on ``device``."""
    return torch.as_tensor(np.asarray(labels), dtype=torch.float32, device=device)


class FeatureBatches:
    """Mini-batches of feature vectors held in memory (frozen mode).

    Each pass draws, per sample, the plain or the flipped feature with probability 1/2 (the
    flip augmentation on cached features) and shuffles the rows, both from ``generator``.

    Args:
        plain: (N, D) features of the unflipped images.
        labels: (N, C) float targets (0/1, or soft in training), on the same device.
        flipped: (N, D) features of the flipped images, or None (no augmentation).
        batch_size: rows per batch (the last batch may be smaller).
        generator: CPU generator for flips and shuffling; None keeps the order (evaluation).
    """

    def __init__(
        self,
        plain: torch.Tensor,
        labels: torch.Tensor,
        flipped: torch.Tensor | None,
        batch_size: int,
        generator: torch.Generator | None = None,
    ) -> None:
        self.plain, self.labels, self.flipped = plain, labels, flipped
        self.batch_size, self.generator = batch_size, generator

    def __len__(self) -> int:
        return -(-len(self.plain) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        inputs, labels = self.plain, self.labels
        if self.generator is not None:
            count = len(inputs)
            if self.flipped is not None:
                pick = (torch.rand(count, generator=self.generator) < 0.5).to(inputs.device)
                inputs = torch.where(pick[:, None], self.flipped, inputs)
            order = torch.randperm(count, generator=self.generator).to(inputs.device)
            inputs, labels = inputs[order], labels[order]
        for start in range(0, len(inputs), self.batch_size):
            yield inputs[start : start + self.batch_size], labels[start : start + self.batch_size]


class LoaderBatches:
    """``(images, targets)`` from a DataLoader of :class:`~mlfer.data.torch_dataset.ImageDataset`
    batches, skipping batches whose images were all unreadable (finetune mode)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            if batch is not None:
                yield batch[0], batch[1]


#: ``loss(logits, targets)``, a scalar tensor.
LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Evaluation:
    """A model's logits on a test set (on the CPU), with the targets and the mean loss."""

    loss: float
    logits: torch.Tensor
    targets: torch.Tensor

    def probabilities(self) -> np.ndarray:
        """Per-label probabilities, the sigmoid of the logits."""
        return torch.sigmoid(self.logits).numpy()


#: What a history row records of an epoch's test pass (the nine metrics at least).
MetricsFunction = Callable[[Evaluation], dict[str, float]]


def multilabel_metrics(evaluation: Evaluation) -> dict[str, float]:
    """The nine metrics of section 4.1 at probability 0.5."""
    return compute_metrics(evaluation.targets.numpy(), evaluation.probabilities())


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""Binary cross-entropy on the logits (eq. 2), averaged over samples and labels.

    .. math::
        L = -\sum_{c=1}^{C} y^c \log \sigma(\hat{y}^c) + (1 - y^c) \log (1 - \sigma(\hat{y}^c))

    Args:
        logits: (B, C) scores :math:`\hat{y}`.
        targets: (B, C) targets :math:`y` in [0, 1]: the 0/1 labels, or soft targets in
            training (``train.soft_targets``, :func:`mlfer.train.targets.training_targets`).
    """
    return F.binary_cross_entropy_with_logits(logits, targets.float())


def make_optimizer(
    groups: dict[str, list[nn.Parameter]], lrs: dict[str, float], config: TrainConfig
) -> torch.optim.Adam:
    """Adam with one named parameter group per entry of ``groups`` (``head``, ``backbone``),
    weight decay from the config; the fused kernel where the parameters' device has one."""
    param_groups = [{"params": params, "lr": lrs[name], "name": name} for name, params in groups.items() if params]
    first = next(params[0] for params in groups.values() if params)
    fused = first.device.type in ("cpu", "cuda")
    return torch.optim.Adam(param_groups, weight_decay=config.weight_decay, fused=fused)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.StepLR:
    """Step decay: every ``config.decay_every()`` epochs each group's learning rate is multiplied by ``lr_gamma``."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.decay_every(), gamma=config.lr_gamma)


@torch.inference_mode()
def evaluate_batches(
    module: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    loss_fn: LossFunction = bce_loss,
) -> Evaluation:
    """``module`` in eval mode over one pass of ``batches``: its logits, the targets and the
    mean loss (under torchrun, of every process's rows)."""
    module.eval()
    logits, targets = [], []
    for inputs, labels in batches:
        logits.append(module(inputs.to(device, non_blocking=True)).float())
        targets.append(labels.to(device).float())
    all_logits = gather_rows(torch.cat(logits) if logits else None)
    all_targets = gather_rows(torch.cat(targets) if targets else None)
    if all_logits is None or all_targets is None:
        raise MlferError("no test row could be read", field="dataset")
    return Evaluation(float(loss_fn(all_logits, all_targets)), all_logits.cpu(), all_targets.cpu())


def _train_epoch(
    module: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFunction,
    device: torch.device,
    progress: bool,
) -> torch.Tensor:
    """One pass of optimisation; returns the summed loss of each batch and the row count (kept
    on the device, so that no step waits for the GPU)."""
    module.train()
    totals = torch.zeros(len(batches) + 1, device=device)
    for step, (inputs, targets) in enumerate(
        show_progress(batches, "batches", unit="batch", leave=False, disable=not progress)
    ):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        loss = loss_fn(module(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        global_batch_loss(loss, len(targets)).backward()
        optimizer.step()
        totals[step] = loss.detach() * len(targets)
        totals[-1] += len(targets)
    return totals


def _check_finite(totals: torch.Tensor, test_loss: float, epoch: int, where: str) -> None:
    """Stop with an error naming the epoch and the first batch whose loss is NaN or infinite."""
    values = totals[:-1].cpu()
    bad = torch.nonzero(~torch.isfinite(values)).flatten()
    if len(bad):
        batch = int(bad[0])
        raise MlferError(
            f"the training loss became {float(values[batch])} at epoch {epoch}, batch {batch + 1}; "
            f"stopped, keeping the last good state ({where})",
            field="training",
        )
    if not np.isfinite(test_loss):
        raise MlferError(
            f"the test loss became {test_loss} after epoch {epoch} (the weights are no longer finite); "
            f"stopped, keeping the last good state ({where})",
            field="training",
        )


def fit(
    module: nn.Module,
    train_batches: Batches,
    test_batches: Batches,
    config: TrainConfig,
    objects: Resumable,
    device: torch.device,
    *,
    name: str = "run",
    run_dir: Path | None = None,
    progress: bool = False,
    loss_fn: LossFunction = bce_loss,
    metrics_fn: MetricsFunction = multilabel_metrics,
) -> list[dict[str, Any]]:
    """Train ``module`` for ``config.epochs`` epochs, evaluating on the test batches after each.

    With ``run_dir``, training continues from ``run_dir/last/`` when it exists and the state
    is written there at the end of an epoch once ``config.save_minutes`` have passed since
    the last write (or the start), and after the last epoch. Returns one history row per
    epoch: run, epoch, train and test loss, the learning rate of each parameter group
    (``lr_head``, ``lr_backbone``), and the metrics (by default BCE and the nine multi-label
    metrics).

    Raises:
        MlferError: when a loss becomes NaN or infinite, naming the epoch and batch; the last
            saved state is the one of the epoch before.
    """
    start, history = load_state(run_dir, objects) if run_dir is not None else (0, [])
    where = f"epoch {start} in {run_dir / LAST_DIR}" if run_dir is not None and start else "none saved"
    if start:
        print(f"{name}: resuming after {where}")
    last_save = time.monotonic()
    for epoch in show_progress(
        range(start + 1, config.epochs + 1), name, initial=start, unit="epoch", disable=not progress
    ):
        totals = sum_across(_train_epoch(module, train_batches, objects.optimizer, loss_fn, device, progress))
        rates = {f"lr_{group['name']}": group["lr"] for group in objects.optimizer.param_groups}
        objects.scheduler.step()
        evaluation = evaluate_batches(module, test_batches, device, loss_fn)
        _check_finite(totals, evaluation.loss, epoch, where)
        history.append(
            {
                "run": name,
                "epoch": epoch,
                "train_loss": float(totals[:-1].sum() / totals[-1]),
                "test_loss": evaluation.loss,
                **rates,
                **metrics_fn(evaluation),
            }
        )
        save_due = time.monotonic() - last_save >= 60 * config.save_minutes
        if run_dir is not None and (save_due or epoch == config.epochs):
            if is_main():
                save_state(run_dir, epoch, history, objects)
            where = f"epoch {epoch} in {run_dir / LAST_DIR}"
            last_save = time.monotonic()
    return history
