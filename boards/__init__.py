"""Board definitions (TOML wiring diagrams) and the firmware that boards run."""
