"""Mission plots: state of charge, power, temperatures and mode against time, and the
loss of each training job. matplotlib is an optional extra (`pip install
'skyrack[plot]'`); without it, a clear error."""

from __future__ import annotations

from typing import Any

MODES = ("safe", "nominal", "compute")
INSTALL_HINT = ("plotting needs matplotlib: pip install -e '.[plot]' (in a checkout) or "
                "'skyrack[plot]'")


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no screen needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    return plt


def plot_points(series: dict[str, list[tuple[float, Any]]], path: str, title: str) -> None:
    """One panel per point against on-board time, into `path` (PNG, PDF, SVG)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(10, 2.5 * len(series) + 1), sharex=True,
                             squeeze=False)
    for ax, (name, points) in zip(axes[:, 0], series.items(), strict=True):
        ax.plot([t for t, _ in points], [v for _, v in points])
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("on-board time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mission(series: dict[str, list[tuple[float, Any]]], path: str, title: str,
                 losses: dict[str, list[float]] | None = None) -> list[str]:
    """Four stacked panels against mission time into `path` (PNG, PDF, SVG: by its
    extension), and below them, when `losses` names training jobs, each job's loss
    against its step. Returns the panels' labels, top to bottom."""
    plt = _pyplot()

    def xy(name: str) -> tuple[list[float], list[float]]:
        points = series.get(name, [])
        return [t / 3600.0 for t, _ in points], [v for _, v in points]

    if losses:
        fig = plt.figure(figsize=(10, 13))
        grid = fig.add_gridspec(5, 1, height_ratios=(1, 1, 1, 1, 1.1), hspace=0.45,
                                top=0.95, bottom=0.05)
        axes = [fig.add_subplot(grid[0])]
        axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in range(1, 4)]
        loss_axis = fig.add_subplot(grid[4])
        for label, curve in losses.items():
            loss_axis.plot(range(1, len(curve) + 1), curve, label=label)
        loss_axis.set_ylabel("training loss (nats)")
        loss_axis.set_xlabel("training step")
        loss_axis.legend(loc="upper right")
    else:
        fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    axes[0].plot(*xy("power.soc_pct"), color="tab:green")
    axes[0].set_ylabel("state of charge (%)")
    for name, label in (("power.solar_power_w", "solar"), ("power.load_power_w", "loads")):
        axes[1].plot(*xy(name), label=label)
    axes[1].set_ylabel("power (W)")
    axes[1].legend(loc="upper right")
    labels = {"accelerator.temp_c": "accelerator die", "thermal.accelerator_temp_c":
              "accelerator cold plate", "thermal.radiator_temp_c": "radiator",
              "thermal.structure_temp_c": "structure", "thermal.flight_computer_temp_c":
              "flight computer", "thermal.battery_temp_c": "battery"}
    for name, label in labels.items():
        axes[2].plot(*xy(name), label=label)
    axes[2].set_ylabel("temperature (degC)")
    axes[2].legend(loc="upper right", fontsize="small")
    t, modes = xy("mode.mode")
    axes[3].step(t, [MODES.index(m) if m in MODES else -1 for m in modes], where="post")
    axes[3].set_yticks(range(len(MODES)), MODES)
    axes[3].set_ylabel("mode")
    axes[3].set_xlabel("mission elapsed time (h)")
    fig.suptitle(title)
    if not losses:
        fig.tight_layout()
    labels = [ax.get_ylabel() for ax in fig.axes]
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return labels
