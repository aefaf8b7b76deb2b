"""The report's static figures (seaborn PNGs that stand alone, since `dvc plots show` needs a CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

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


def accuracy_vs_size(rows: list[dict[str, Any]], path: Path) -> None:
    frame = pd.DataFrame(
        [
            {
                "variant": r["variant"],
                "size": r["compressed_bytes"] / MB,
                "accuracy": 100 * r["accuracy"],
                "format": r["format"],
            }
            for r in rows
        ]
    )
    figure, axes = plt.subplots(figsize=(9, 6))
    sns.scatterplot(data=frame, x="size", y="accuracy", hue="format", s=70, ax=axes)
    front = pareto_front(list(zip(frame["size"], frame["accuracy"], strict=True)))
    axes.plot(frame["size"].iloc[front], frame["accuracy"].iloc[front], "k--", linewidth=1, label="Pareto front")
    for _, row in frame.iterrows():
        axes.annotate(
            row["variant"], (row["size"], row["accuracy"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    axes.set(
        xscale="log",
        xlabel="compressed size, gzip -9 (MB, log scale)",
        ylabel="test accuracy (%)",
        title="Accuracy vs compressed size",
    )
    axes.legend(fontsize=8)
    _save(figure, path)


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


def accuracy_vs_memory(rows: list[dict[str, Any]], boards: dict[str, dict[str, Any]], path: Path) -> None:
    """TFLM accuracy against arena and against flash for every int8 model, with each board's budget as a line."""
    measured = [r for r in rows if r["tflm_arena_bytes"]]
    figure, (ram_axes, flash_axes) = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for axes, key, budget, xlabel in (
        (
            ram_axes,
            "tflm_arena_bytes",
            lambda b: max(b["sram_bytes"], b["psram_bytes"]) - b["ram_reserve_bytes"],
            "TFLite Micro arena (KB, log scale)",
        ),
        (
            flash_axes,
            "size_bytes",
            lambda b: (b["flash_bytes"] - b["flash_reserve_bytes"]) / b["flash_images"],
            ".tflite size = flash (KB, log scale)",
        ),
    ):
        points = [(r[key] / 1024, 100 * r["accuracy"]) for r in measured]
        if points:
            axes.scatter([x for x, _ in points], [y for _, y in points], s=40)
        front = pareto_front(points)
        axes.plot(
            [points[i][0] for i in front], [points[i][1] for i in front], "k--", linewidth=1, label="Pareto front"
        )
        for row, (x, y) in zip(measured, points, strict=True):
            axes.annotate(row["variant"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for index, (name, board) in enumerate(boards.items()):
            axes.axvline(budget(board) / 1024, color=sns.color_palette()[index % 10], linestyle=":", label=name)
        axes.set(xscale="log", xlabel=xlabel, ylabel="test accuracy (%)")
        axes.legend(fontsize=7)
    figure.suptitle("What fits a board: accuracy against the memory a microcontroller pays for (lines: budgets)")
    _save(figure, path)
