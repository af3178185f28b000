"""Build the lessons: one source each, two notebooks out.

    python lessons/build.py            # execute every lesson, rewrite both notebooks in place
    python lessons/build.py 03 05      # only these lessons
    python lessons/build.py --check    # no execution: do the committed notebooks match the sources?
    python lessons/build.py --derive   # no execution: learner copies rewritten from the solved ones

Source: ``lessons/src/NN_name.py`` in the "percent" format (``# %% [markdown]`` starts a
markdown cell whose lines are comments, ``# %%`` a code cell). Exercise code sits between a
``# BEGIN SOLUTION [TODO text]`` line and an ``# END SOLUTION`` line.

Out:
- ``lessons/solutions/NN_name.ipynb``: the solved lesson, executed top to bottom by a headless
  kernel (cwd ``lessons/``, fixed ``PYTHONHASHSEED``, matplotlib's inline backend), with its
  outputs. CI runs these under pytest (nbmake).
- ``lessons/NN_name.ipynb``: the learner's copy. Each solution block becomes a TODO comment and
  ``raise NotImplementedError("TODO: ...")``; those cells' outputs are cleared, every other
  cell keeps the solved run's outputs, so figures and numbers read on a code host.

The learner's notebook is a pure function of the source and the solved notebook
(:func:`learner_notebook`), so tests/test_lessons_build.py checks for drift without executing.
Cell ids and metadata are fixed (no timings, no kernel versions), so a rebuild diffs only
where something really changed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

LESSONS = Path(__file__).resolve().parent
SRC = LESSONS / "src"
SOLUTIONS = LESSONS / "solutions"
TIME_BUDGET_S = 60  # each lesson, executed, on 2 CPU cores (CI runs them all)

_CELL = re.compile(r"^# %%(?P<rest>.*)$")
_BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\b:?\s*(?P<todo>.*?)\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def sources(selected: list[str] | None = None) -> list[Path]:
    """The lesson sources, in order; ``selected`` holds numbers like '03' (all if empty)."""
    paths = sorted(SRC.glob("[0-9][0-9]_*.py"))
    if selected:
        paths = [p for p in paths if p.name[:2] in selected]
        missing = set(selected) - {p.name[:2] for p in paths}
        if missing:
            raise SystemExit(f"build.py: no lesson source for {', '.join(sorted(missing))}")
    return paths


def parse_cells(text: str) -> list[tuple[str, str]]:
    """Percent-format text -> [(cell_type, source)]; markdown lines lose their '# '."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _CELL.match(line)
        if m:
            kind = "markdown" if "[markdown]" in m["rest"] else "code"
            cells.append((kind, []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"text before the first '# %%' cell marker: {line!r}")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        out.append((kind, "\n".join(lines)))
    return out


def solved_source(code: str) -> str:
    """The code with the solution markers removed (the solution kept)."""
    return "\n".join(ln for ln in code.split("\n") if not (_BEGIN.match(ln) or _END.match(ln)))


def stub_source(code: str) -> str:
    """The code with each solution block replaced by a TODO and a NotImplementedError."""
    out, inside = [], False
    for ln in code.split("\n"):
        begin = _BEGIN.match(ln)
        if begin:
            if inside:
                raise ValueError("nested # BEGIN SOLUTION")
            inside = True
            todo = begin["todo"].strip() or "write this part (see the text above)"
            pad = begin["indent"]
            out.append(f"{pad}# TODO: {todo}")
            out.append(f'{pad}raise NotImplementedError("TODO: {_quote(todo)}")')
        elif _END.match(ln):
            if not inside:
                raise ValueError("# END SOLUTION without # BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(ln)
    if inside:
        raise ValueError("# BEGIN SOLUTION without # END SOLUTION")
    return "\n".join(out)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def has_solution(code: str) -> bool:
    return any(_BEGIN.match(ln) for ln in code.split("\n"))


def _new_notebook(cells: list[tuple[str, str]], stem: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.from_dict(_METADATA)
    for i, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(solved_source(source))
        cell.id = f"{stem[:2]}-{i:03d}"
        nb.cells.append(cell)
    return nb


def execute(nb, timeout: int = 600):
    """Run ``nb`` top to bottom in a fresh headless kernel (cwd lessons/); raises on error."""
    from nbclient import NotebookClient

    env_before = {k: os.environ.get(k) for k in ("MPLBACKEND", "PYTHONHASHSEED")}
    # The inline backend renders with Agg (headless) and stores each figure as a PNG output.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(LESSONS)}},
            record_timing=False,
        ).execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def clean(nb):
    """Drop what changes from run to run without meaning anything: kernel versions, timings."""
    nb.metadata = nbformat.from_dict(_METADATA)
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({})
        for out in cell.get("outputs", []):
            out.get("metadata", {}).pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
    return nb


def _merge_streams(outputs):
    """One stream output where the kernel flushed several in a row (how it splits them
    depends on timing, which would make every rebuild differ)."""
    merged = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (
            out.output_type == "stream"
            and prev is not None
            and prev.output_type == "stream"
            and prev.name == out.name
        ):
            prev.text += out.text
        else:
            merged.append(out)
    return merged


def learner_notebook(solved, cells: list[tuple[str, str]]):
    """The learner's copy of a solved notebook: stubs where solutions were, outputs elsewhere."""
    if len(solved.cells) != len(cells):
        raise ValueError("the solved notebook's cells do not match the source's")
    nb = nbformat.from_dict(solved)  # a deep copy
    for cell, (kind, source) in zip(nb.cells, cells, strict=True):
        if kind == "code" and has_solution(source):
            cell.source = stub_source(source)
            cell.outputs = []
            cell.execution_count = None
    return nb


def source_matches(solved, cells: list[tuple[str, str]]) -> bool:
    """True when the solved notebook was built from exactly these cells."""
    if len(solved.cells) != len(cells):
        return False
    for cell, (kind, source) in zip(solved.cells, cells, strict=True):
        want = solved_source(source) if kind == "code" else source
        if cell.cell_type != kind or cell.source != want:
            return False
    return True


def paths_for(src: Path) -> tuple[Path, Path]:
    """(solved notebook, learner notebook) for a source file."""
    name = src.stem + ".ipynb"
    return SOLUTIONS / name, LESSONS / name


def write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb, version=4)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def build(src: Path) -> float:
    """Execute one lesson and write both notebooks; returns the execution time in seconds."""
    cells = parse_cells(src.read_text(encoding="utf-8"))
    nb = _new_notebook(cells, src.stem)
    start = time.perf_counter()
    execute(nb)
    seconds = time.perf_counter() - start
    solved = clean(nb)
    solved_path, learner_path = paths_for(src)
    write(solved, solved_path)
    write(learner_notebook(solved, cells), learner_path)
    return seconds


def check(src: Path) -> list[str]:
    """Problems with the committed notebooks of one lesson (empty when in step)."""
    cells = parse_cells(src.read_text(encoding="utf-8"))
    solved_path, learner_path = paths_for(src)
    if not solved_path.exists() or not learner_path.exists():
        return [f"{src.name}: notebooks missing; run python lessons/build.py {src.name[:2]}"]
    solved = nbformat.read(solved_path, as_version=4)
    problems = []
    if not source_matches(solved, cells):
        problems.append(f"{solved_path.name}: solved notebook differs from {src.name}")
    else:
        want = nbformat.writes(learner_notebook(solved, cells), version=4)
        want = want if want.endswith("\n") else want + "\n"
        if learner_path.read_text(encoding="utf-8") != want:
            problems.append(f"{learner_path.name}: learner notebook differs from its derivation")
    return [p + f" (rebuild: python lessons/build.py {src.name[:2]})" for p in problems]


def derive(srcs: list[Path]) -> int:
    """Learner notebooks from the solved ones, for lessons whose solved notebook is current."""
    stale = []
    for src in srcs:
        cells = parse_cells(src.read_text(encoding="utf-8"))
        solved_path, learner_path = paths_for(src)
        solved = nbformat.read(solved_path, as_version=4)
        if not source_matches(solved, cells):
            stale.append(src.name)
            continue
        write(learner_notebook(solved, cells), learner_path)
    for name in stale:
        print(
            f"{name}: solved notebook out of date; run python lessons/build.py {name[:2]}",
            file=sys.stderr,
        )
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 03 05 (default: all)")
    parser.add_argument("--check", action="store_true", help="check for drift, execute nothing")
    parser.add_argument(
        "--derive",
        action="store_true",
        help="rewrite only the learner notebooks from the committed solved ones (no execution)",
    )
    args = parser.parse_args(argv)
    selected = [n.zfill(2) for n in args.lessons]
    if args.derive:
        return derive(sources(selected))
    if args.check:
        problems = [p for src in sources(selected) for p in check(src)]
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    slow = []
    for src in sources(selected):
        print(f"{src.name} ...", end=" ", flush=True)
        seconds = build(src)
        print(f"{seconds:.1f} s")
        if seconds > TIME_BUDGET_S:
            slow.append(f"{src.name}: {seconds:.0f} s (budget {TIME_BUDGET_S} s)")
    for s in slow:
        print("over budget:", s, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
