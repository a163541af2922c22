"""Drivers: one module per board kind, each speaking the board protocol over a
hal Transport. A driver cannot tell an emulated board from a real one."""
