"""Compare two stage-time files (benchmarks/stage_times.py) by stage kind: time per kind, and the step rates.

Usage: python benchmarks/compare.py OLD.json NEW.json
A stage kind is the stage name before `@` (all `convert-pruned@<s>` together). Kinds only one run has are listed apart.
The students' share is what the teacher, the students and their evaluations add to the rest of the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def by_kind(stages: dict[str, float]) -> dict[str, float]:
    kinds: dict[str, float] = {}
    for name, seconds in stages.items():
        kinds[name.split("@")[0]] = kinds.get(name.split("@")[0], 0.0) + seconds
    return kinds


STUDENT_KINDS = {"teacher", "student", "evaluate-student"}


def students_share(kinds: dict[str, float]) -> str:
    students = sum(seconds for kind, seconds in kinds.items() if kind in STUDENT_KINDS)
    rest = sum(seconds for kind, seconds in kinds.items() if kind not in STUDENT_KINDS)
    return f"{students:.0f} s on top of {rest:.0f} s = {students / rest:.1%}" if students else "no students"


def main() -> None:
    old, new = (json.loads(Path(path).read_text()) for path in sys.argv[1:3])
    before, after = by_kind(old["stage_seconds"]), by_kind(new["stage_seconds"])
    print(f"old: {old['machine']['cpu']}, {old.get('conditions', 'no conditions noted')}")
    print(f"new: {new['machine']['cpu']}, {new.get('conditions', 'no conditions noted')}")
    print(f"{'kind':<20}{'old s':>10}{'new s':>10}{'new/old':>10}")
    for kind in sorted(set(before) | set(after), key=lambda k: -max(before.get(k, 0), after.get(k, 0))):
        ratio = f"{after[kind] / before[kind]:.2f}" if kind in before and kind in after else "–"
        print(f"{kind:<20}{before.get(kind, 0):>10.0f}{after.get(kind, 0):>10.0f}{ratio:>10}")
    shared = set(before) & set(after)
    old_total, new_total = sum(before[k] for k in shared), sum(after[k] for k in shared)
    print(f"{'shared kinds':<20}{old_total:>10.0f}{new_total:>10.0f}{new_total / old_total:>10.2f}")
    print(f"step seconds old {old.get('median_step_seconds')}\nstep seconds new {new.get('median_step_seconds')}")
    print(f"students' share old: {students_share(before)}\nstudents' share new: {students_share(after)}")


if __name__ == "__main__":
    main()
