"""Compute on the accelerator that finishes correct: workloads run as steps, every GEMM
checked (ABFT), weights and state shielded, activations CRC-checked, checkpoints for
rollback."""
