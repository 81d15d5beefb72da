"""Reproductions of the paper's figures as library functions (the CLI and scripts call these)."""

from lohard.experiments.fig4 import Fig4Config, plot_fig4, run_fig4

__all__ = ["Fig4Config", "run_fig4", "plot_fig4"]
