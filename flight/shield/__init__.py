"""The shield: radiation hardening for compute memory, in C behind a small Python API.

- `crc32c`: CRC32C (Castagnoli), on the CPU's CRC instruction when it has one.
- `ShieldedRegion`: per-block CRCs and RAID-6 parity over a numpy buffer; verify,
  repair and commit.
- `CheckpointStore`: A/B, incremental, power-cut-safe checkpoints of named buffers.
- `abft_scan`, `abft_product`, `abft_appended`, `float_block_check`, `float_block_sums`,
  `copy_crc32c`: the one-pass kernels behind checked GEMMs and activations.
"""

from flight.shield.checkpoint import (
    CheckpointError,
    CheckpointStore,
    PowerCut,
    Restored,
    Saved,
    unusable,
)
from flight.shield.kernel import (
    AbftScan,
    ShieldError,
    abft_appended,
    abft_product,
    abft_scan,
    adamw_step,
    copy_crc32c,
    crc32c,
    float_block_check,
    float_block_sums,
    gelu_check,
    hardware_crc,
    layernorm_check,
    softmax_check,
)
from flight.shield.region import RepairReport, ShieldedRegion

__all__ = [
    "AbftScan", "CheckpointError", "CheckpointStore", "PowerCut", "RepairReport", "Restored",
    "Saved", "ShieldError", "ShieldedRegion", "abft_appended", "abft_product", "abft_scan",
    "adamw_step", "copy_crc32c", "crc32c", "float_block_check", "float_block_sums",
    "gelu_check", "hardware_crc", "layernorm_check", "softmax_check", "unusable",
]
