"""The report's static figures (seaborn PNGs that stand alone, since `dvc plots show` needs a CDN)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from stages.lib.core.params import RANKINGS  # noqa: E402
from stages.lib.core.settings import Board  # noqa: E402

MB = 1e6


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both smaller size and higher accuracy, by size."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -1.0
    for index in order:
        if points[index][1] > best:
            front.append(index)
            best = points[index][1]
    return front


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _save_with_key(
    figure: plt.Figure, rows: list[dict[str, Any]], key_left: float, path: Path, **margins: float
) -> None:
    """Save a figure of numbered points (`_numbered`) with their key from `key_left` in the right margin."""
    figure.subplots_adjust(**margins)
    _key(figure, rows, key_left)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def byte_ticks(axes: plt.Axes) -> None:
    """Plain KB / MB tick labels on a log-scaled byte axis."""

    def label(value: float, _position: int) -> str:
        return f"{value / MB:g} MB" if value >= MB else f"{value / 1e3:g} KB"

    axes.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(label))
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _numbered(axes: plt.Axes, rows: list[dict[str, Any]], xs: list[float], colour: Any = None) -> None:
    """Each point with its interval and a number (the key beside the plot names it): labels never collide."""
    for number, (row, x) in enumerate(zip(rows, xs, strict=True), 1):
        low, high = (100 * v for v in row["accuracy_ci"])
        y = 100 * row["accuracy"]
        axes.errorbar(x, y, yerr=[[y - low], [high - y]], fmt="o", ms=4, color=colour, alpha=0.8, elinewidth=0.8)
        axes.annotate(str(number), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")


def _key(figure: plt.Figure, rows: list[dict[str, Any]], left: float) -> None:
    figure.text(
        left,
        0.5,
        "\n".join(f"{number:>2} {row['variant']}" for number, row in enumerate(rows, 1)),
        fontsize=7,
        family="monospace",
        va="center",
        ha="left",
    )


def accuracy_vs_size(rows: list[dict[str, Any]], level: str, path: Path) -> None:
    """Test accuracy (`level` interval) against gzip size, every variant numbered, with the Pareto front."""
    figure, axes = plt.subplots(figsize=(12, 6))
    sizes = [r["compressed_bytes"] for r in rows]
    _numbered(axes, rows, sizes, sns.color_palette()[0])
    points = [(size, 100 * r["accuracy"]) for size, r in zip(sizes, rows, strict=True)]
    front = pareto_front(points)
    axes.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", linewidth=1, label="Pareto front")
    axes.set(
        xscale="log",
        xlabel="compressed size, gzip -9 (log scale)",
        ylabel=f"test accuracy (%, bar: {level} interval)",
        title="Accuracy vs compressed size",
    )
    byte_ticks(axes)
    axes.legend(fontsize=8, loc="lower right")
    _save_with_key(figure, rows, 0.72, path, left=0.07, right=0.7, bottom=0.1, top=0.93)


def latency(rows: list[dict[str, Any]], path: Path) -> None:
    ordered = sorted(rows, key=lambda r: r["latency_ms"]["median"])
    figure, axes = plt.subplots(figsize=(9, max(4, 0.3 * len(rows))))
    labels = [f"{r['variant']} ({r['kernels']})" for r in ordered]
    axes.barh(
        labels,
        [r["latency_ms"]["median"] for r in ordered],
        xerr=[r["latency_ms"]["iqr"] / 2 for r in ordered],
        color=sns.color_palette()[0],
    )
    axes.set(
        xlabel="median latency per image (ms, LiteRT on this CPU; bar: IQR)",
        ylabel="variant (kernels)",
        title="Single-image latency",
    )
    axes.tick_params(axis="y", labelsize=7)
    _save(figure, path)


def accuracy_vs_sparsity(rows: list[dict[str, Any]], path: Path) -> None:
    frame = pd.DataFrame(
        [
            {"sparsity": 100 * r["sparsity_target"], "accuracy": 100 * r["accuracy"], "format": r["format"]}
            for r in rows
            if r["model"] == "baseline" or r["model"].startswith("pruned/")
        ]
    )
    figure, axes = plt.subplots(figsize=(7, 5))
    sns.lineplot(data=frame, x="sparsity", y="accuracy", hue="format", marker="o", ax=axes)
    axes.set(
        xlabel="target sparsity of Conv2D/Dense kernels (%)",
        ylabel="test accuracy (%)",
        title="Accuracy vs pruning sparsity",
    )
    _save(figure, path)


def training_curves(live_folders: dict[str, Path], path: Path) -> None:
    """Loss and accuracy per epoch for each DVCLive folder (train, prune, deploy)."""
    frames = []
    for name, folder in live_folders.items():
        for tsv in (folder / "plots" / "metrics").glob("*/*.tsv"):
            frame = pd.read_csv(tsv, sep="\t")
            frames.append(
                pd.DataFrame(
                    {
                        "epoch": frame["step"] + 1,
                        "value": frame.iloc[:, -1],
                        "metric": tsv.stem,
                        "split": tsv.parent.name,
                        "run": name,
                    }
                )
            )
    if not frames:
        return
    data = pd.concat(frames)
    data = data[data["metric"].isin(["loss", "accuracy"])]
    grid = sns.relplot(
        data=data,
        x="epoch",
        y="value",
        hue="run",
        style="split",
        col="metric",
        kind="line",
        marker="o",
        facet_kws={"sharey": False},
        height=4,
    )
    grid.set_axis_labels("epoch", "value")
    grid.figure.suptitle("Training and fine-tuning curves", y=1.02)
    grid.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(grid.figure)


RAM_AXIS, FLASH_AXIS = (
    "RAM: TFLite Micro arena + image (+ block-output buffer in patches; log scale)",
    "flash: the bytes a board stores (log scale)",
)


def ram_budget(board: Board) -> float:
    """The most RAM a board gives a model: its larger RAM less the reserve."""
    return max(board.sram_bytes, board.psram_bytes) - board.ram_reserve_bytes


def flash_budget(board: Board) -> float:
    """The largest model a board stores: its flash less the reserve, shared by its images."""
    return (board.flash_bytes - board.flash_reserve_bytes) / board.flash_images


def _tie_bar(axes: plt.Axes, x: float, y: float, best: float, difference: dict[str, float], tied: bool) -> None:
    """A candidate with the paired interval of its difference from the best, drawn from the best's score: blue when
    it is tied (the bar reaches the best's line), grey when it is significantly worse."""
    colour = sns.color_palette()[0] if tied else "grey"
    low, high = best + difference["low"], best + difference["high"]
    axes.errorbar(x, y, yerr=[[max(0, y - low)], [max(0, high - y)]], fmt="o", ms=5, color=colour)


def _board_limits(axes: plt.Axes, limit: float, xlabel: str, best: tuple[float, str] | None) -> None:
    """The best's score (dashed) and the board's limit (dotted) on a log byte axis, with the legend."""
    if best is not None:
        axes.axhline(best[0], color="black", linestyle="--", linewidth=1, label=f"best: {best[1]}")
    axes.axvline(limit, color="black", linestyle=":", label="limit")
    axes.set(xscale="log", xlabel=xlabel)
    byte_ticks(axes)
    axes.legend(fontsize=7, loc="lower right")


def board_pick(
    rows: list[dict[str, Any]],
    name: str,
    board: Board,
    choice: dict[str, Any],
    rank_by: str,
    level: str,
    path: Path,
) -> None:
    """One board's choice: every int8 model's validation score against RAM and flash, the board's limits, and for
    each candidate the `level` paired interval of its difference from the best, drawn from the best's score (dashed):
    a bar that reaches the dashed line is a tie. The pick is a star."""
    measured = [r for r in rows if r["ram_bytes"]]
    differences = choice.get("differences_from_best", {})
    best = next((r for r in measured if r["variant"] == choice.get("best")), None)
    figure, (ram_axes, flash_axes) = plt.subplots(1, 2, figsize=(15, 5.5), sharey=True)
    for axes, key, budget, xlabel in (
        (ram_axes, "ram_bytes", ram_budget, RAM_AXIS),
        (flash_axes, "flash_bytes", flash_budget, FLASH_AXIS),
    ):
        for number, row in enumerate(measured, 1):
            x, y = row[key], row[rank_by]
            variant = row["variant"]
            if variant in differences:  # a candidate: fits and clears the floor
                _tie_bar(axes, x, y, best[rank_by], differences[variant], variant in choice["tied"])
            else:  # does not fit, or below the accuracy floor
                axes.plot(x, y, "o", ms=5, mfc="none", color="grey")
            if variant == choice["variant"]:
                axes.plot(x, y, "*", ms=16, color=sns.color_palette()[3], label="pick")
            axes.annotate(str(number), (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        _board_limits(axes, budget(board), xlabel, best and (best[rank_by], best["variant"]))
    ram_axes.set_ylabel(f"{RANKINGS[rank_by]} (bar: {level} paired interval from the best)")
    figure.suptitle(
        f"{name}: {board.description}. Filled: candidates (blue: tied with the best); hollow: does not fit or "
        "below the floor",
        fontsize=9,
    )
    _save_with_key(figure, measured, 0.81, path, left=0.06, right=0.8, bottom=0.12, top=0.9, wspace=0.08)


def accuracy_vs_memory(rows: list[dict[str, Any]], boards: Mapping[str, Board], level: str, path: Path) -> None:
    """Test accuracy against RAM and against stored flash for every int8 model, with each board's budget as a line."""
    measured = [r for r in rows if r["ram_bytes"]]
    figure, (ram_axes, flash_axes) = plt.subplots(1, 2, figsize=(15, 5.5), sharey=True)
    for axes, key, budget, xlabel in (
        (ram_axes, "ram_bytes", ram_budget, RAM_AXIS),
        (flash_axes, "flash_bytes", flash_budget, FLASH_AXIS),
    ):
        xs = [r[key] for r in measured]
        _numbered(axes, measured, xs, "black")
        points = [(x, 100 * r["accuracy"]) for x, r in zip(xs, measured, strict=True)]
        front = pareto_front(points)
        axes.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", linewidth=1, label="Pareto")
        for index, (name, board) in enumerate(boards.items()):
            axes.axvline(budget(board), color=sns.color_palette()[index % 10], linestyle=":", label=name)
        axes.set(xscale="log", xlabel=xlabel, ylabel=f"test accuracy (%, bar: {level} interval)")
        byte_ticks(axes)
        axes.legend(fontsize=7, loc="lower right")
    figure.suptitle("What fits a board: accuracy against the memory a microcontroller pays for (lines: budgets)")
    _save_with_key(figure, measured, 0.81, path, left=0.05, right=0.8, bottom=0.12, top=0.9, wspace=0.08)


def search_frontier(entry: dict[str, Any], name: str, board: Board, level: str, path: Path) -> None:
    """One board's searched student space (`benchmarks/student_search.py`): each candidate's int8 validation AUC
    against RAM and flash, the board's limits, and for the fully trained ones the `level` paired interval of their
    difference from the best, drawn from the best's AUC (dashed). Crosses: the proxy's AUC of candidates not trained
    in full (a shorter recipe, so lower); hollow: does not fit. The pick is a star."""
    rows = entry["candidates"]
    best = next((row for row in rows if row["name"] == entry.get("best")), None)
    figure, (ram_axes, flash_axes) = plt.subplots(1, 2, figsize=(15, 5.5), sharey=True)
    for axes, key, budget, xlabel in (
        (ram_axes, "ram_bytes", ram_budget, RAM_AXIS),
        (flash_axes, "flash_bytes", flash_budget, FLASH_AXIS),
    ):
        for row in rows:
            x = row[key]
            if row["full_auc"] is None:
                axes.plot(x, row["proxy_auc"], "x", ms=4, color="grey" if row["fits"] else "lightgrey")
            elif "difference_from_best" in row:
                tied = row["name"] in entry["tied"]
                _tie_bar(axes, x, row["full_auc"], best["full_auc"], row["difference_from_best"], tied)
            else:
                axes.plot(x, row["full_auc"], "o", ms=5, mfc="none", color="grey")
            if row["name"] == entry.get("pick"):
                axes.plot(x, row["full_auc"], "*", ms=16, color=sns.color_palette()[3], label=f"pick: {row['name']}")
                axes.annotate(
                    row["name"], (x, row["full_auc"]), fontsize=7, xytext=(6, -10), textcoords="offset points"
                )
        _board_limits(axes, budget(board), xlabel, best and (best["full_auc"], best["name"]))
    ram_axes.set_ylabel(f"int8 validation ROC AUC (bar: {level} paired interval from the best)")
    figure.suptitle(
        f"{name}: {board.description}. Dots: trained in full (blue: tied with the best; hollow: does not fit); "
        "crosses: proxy only",
        fontsize=9,
    )
    _save(figure, path)
