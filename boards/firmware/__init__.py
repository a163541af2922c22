"""Board-side firmware: a protocol server plus per-board handler tables.

Each board's logic talks to its hardware only through a small platform interface,
so the same code runs on a dev board and, in the sim, on simulated physics.
"""
