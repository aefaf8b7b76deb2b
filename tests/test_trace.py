"""The read recorder behind the dvc.yaml declaration test: params keys and opened files."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT, run_module
from stages.lib.core import params, trace


def test_settings_record_the_most_specific_keys_read(monkeypatch):
    monkeypatch.setattr(trace, "PARAMS_READ", set())
    settings = params.load(ROOT / "params.yaml")
    monkeypatch.setattr(trace, "PARAMS_READ", set())
    assert settings.train.batch_size > 0 and settings.seed >= 0
    assert settings.report.targets["rp2040"].sram_bytes > 0 and list(settings.students.shapes)
    shape = settings.students.shapes["b7_96"]
    assert shape.patches is None or shape.patches.grid >= 2
    assert trace.params_read() == [
        "report.targets.rp2040.sram_bytes",
        "seed",
        "students.shapes.b7_96.patches" + (".grid" if shape.patches else ""),
        "train.batch_size",
    ]


def test_a_stage_process_writes_what_it_read(tmp_path: Path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("source: elpv", "source: nowhere"))
    folder = tmp_path / "trace"
    folder.mkdir()
    result = run_module("stages.prepare", tmp_path, env={trace.ENV: str(folder)})
    assert result.returncode == 2  # the folder does not exist: the trace is written on a failing exit too
    (record,) = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    assert record["module"] == "stages.prepare" and record["args"] == []
    assert "data.source" in record["params"] and "data.positive_class" not in record["params"]


def test_a_stages_worker_processes_record_as_part_of_the_stage(tmp_path: Path):
    """TFLite Micro runs in spawned workers, which import the stage's module again: the stage writes one record,
    holding what it and its workers read."""
    folder = tmp_path / "trace"
    folder.mkdir()
    (tmp_path / "spawner.py").write_text(
        "import multiprocessing\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from stages.lib.core import params\n"
        "def work():\n"
        "    return params.load().data.image_size\n"
        "if __name__ == '__main__':\n"
        "    params.load().seed\n"
        "    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn')) as pool:\n"
        "        assert [pool.submit(work).result() for _ in range(4)] == [224] * 4\n"
    )
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    result = run_module("spawner", tmp_path, "--flag", env={trace.ENV: str(folder)})
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    assert (record["module"], record["args"]) == ("spawner", ["--flag"])
    assert record["params"] == ["data.image_size", "seed"]
    assert not list(folder.glob("*.part"))
