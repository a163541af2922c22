"""The world the satellite flies in, and emulated boards that run the real board
firmware on simulated physics. Swaps in for hardware; `flight` never imports it."""
