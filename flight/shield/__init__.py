"""The shield: radiation hardening for compute memory, in C behind a small Python API.

- `crc32c`: CRC32C (Castagnoli), on the CPU's CRC instruction when it has one.
- `ShieldedRegion`: per-block CRCs and RAID-6 parity over a numpy buffer; verify,
  repair and commit.
- `CheckpointStore`: A/B, incremental, power-cut-safe checkpoints of named buffers.
"""

from flight.shield.checkpoint import CheckpointError, CheckpointStore, PowerCut, Restored, Saved
from flight.shield.kernel import ShieldError, crc32c, hardware_crc
from flight.shield.region import RepairReport, ShieldedRegion

__all__ = [
    "CheckpointError", "CheckpointStore", "PowerCut", "RepairReport", "Restored", "Saved",
    "ShieldError", "ShieldedRegion", "crc32c", "hardware_crc",
]
