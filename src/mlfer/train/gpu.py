"""The GPU switches of a run, applied to the module the epoch loop drives.

``train.amp=bf16`` (bfloat16 autocast; ``auto``: where the device computes bfloat16 natively,
:func:`native_bf16`), ``train.channels_last`` (NHWC activations),
``train.sync_batchnorm`` (BatchNorm statistics over the global batch under torchrun) and
``train.compile`` (``torch.compile``) are all off by default, and all run on the CPU too
(``sync_batchnorm`` only matters with several GPUs). With every switch off and one
process, :func:`training_module` returns the module itself.
"""

from __future__ import annotations

import typing
from pathlib import Path

import torch
from torch import nn

from mlfer.core.config import TrainConfig
from mlfer.core.errors import MlferError
from mlfer.runtime.distributed import check_global_batch, world_size, wrap_data_parallel


class Accelerated(nn.Module):
    """``module`` fed channels-last inputs and/or run under bfloat16 autocast; the logits
    come back in float32, so the loss and the metrics stay in full precision.

    Only the inputs are converted to channels-last: each convolution then writes its
    output in that layout, which carries through the network, while the weights (and the
    optimiser's state, which a resumed run restores contiguous) keep their layout. Fused
    Adam silently mixes up elements when a channels-last weight meets a contiguous state.

    Args:
        module: the model or head.
        amp: ``none`` or ``bf16``.
        channels_last: convert 4-D inputs to ``torch.channels_last``.
    """

    def __init__(self, module: nn.Module, amp: str, channels_last: bool) -> None:
        super().__init__()
        self.module, self.amp, self.channels_last = module, amp, channels_last

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=self.amp == "bf16"):
            return self.module(inputs).float()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a GPU that supports it, or a CPU with AMX or
    AVX-512 BF16 (elsewhere autocast emulates it, slower than float32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def training_module(module: nn.Module, config: TrainConfig, device: torch.device) -> nn.Module:
    """The module :func:`mlfer.train.loop.fit` trains and evaluates: ``module`` (already on
    ``device``) with SyncBatchNorm, the :class:`Accelerated` wrapper, DistributedDataParallel
    under torchrun and ``torch.compile``, each where asked. Its parameters are ``module``'s,
    so the optimiser and the resume state keep working on ``module``.
    """
    check_global_batch(config.batch_size)
    if config.sync_batchnorm and world_size() > 1:
        if device.type != "cuda":
            raise MlferError("SyncBatchNorm needs GPUs; turn it off on the CPU", field="train.sync_batchnorm")
        nn.SyncBatchNorm.convert_sync_batchnorm(module)
    amp = ("bf16" if native_bf16(device) else "none") if config.amp == "auto" else config.amp
    if amp != "none" or config.channels_last:
        module = Accelerated(module, amp, config.channels_last)
    module = wrap_data_parallel(module, device)
    return typing.cast(nn.Module, torch.compile(module)) if config.compile else module
