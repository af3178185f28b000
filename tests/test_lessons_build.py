"""lessons/build.py: the committed notebooks are what the sources make (no drift), and the
learner's copy hides every solution behind a stub that still compiles. Nothing is executed
here; CI executes the solved notebooks through nbmake (pyproject's testpaths)."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
_spec = importlib.util.spec_from_file_location("lessons_build", LESSONS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = build.sources()


def test_there_are_lessons():
    assert len(SOURCES) >= 1


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebooks_match_the_source(src):
    assert build.check(src) == []


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_learner_notebook_hides_solutions_and_compiles(src):
    cells = build.parse_cells(src.read_text(encoding="utf-8"))
    learner = nbformat.read(build.paths_for(src)[1], as_version=4)
    solved = nbformat.read(build.paths_for(src)[0], as_version=4)
    exercises = 0
    for cell, sol, (kind, source) in zip(learner.cells, solved.cells, cells, strict=True):
        if kind != "code":
            continue
        assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
        compile(cell.source, f"{src.stem} cell {cell.id}", "exec")
        if build.has_solution(source):
            exercises += 1
            assert 'raise NotImplementedError("TODO' in cell.source and cell.outputs == []
        else:
            assert cell.outputs == sol.outputs
    assert exercises >= 1, f"{src.stem}: no exercise (# BEGIN SOLUTION ... # END SOLUTION)"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_solved_notebook_has_outputs_and_no_errors(src):
    solved = nbformat.read(build.paths_for(src)[0], as_version=4)
    code = [c for c in solved.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), f"{src.stem}: not executed"
    for c in code:
        assert not any(o.output_type == "error" for o in c.outputs), f"{src.stem}: error"


STUBBED = """x = 1
def f(a):
    y = a + 1
    # BEGIN SOLUTION: return the square of y
    z = y * y
    return z
    # END SOLUTION
print(f(x))"""


def test_stub_source_replaces_the_block_with_a_todo():
    stub = build.stub_source(STUBBED)
    assert "z = y * y" not in stub
    assert '    # TODO: return the square of y\n    raise NotImplementedError("TODO: return' in stub
    ns = {}
    with pytest.raises(NotImplementedError, match="square"):
        exec(compile(stub, "stub", "exec"), ns)
    assert build.solved_source(STUBBED).count("BEGIN") == 0
    exec(compile(build.solved_source(STUBBED), "solved", "exec"), {})


def test_todo_text_is_kept_whole():
    stub = build.stub_source("# BEGIN SOLUTION: dx = col2im(W^T dY)\nx = 1\n# END SOLUTION")
    assert stub.startswith("# TODO: dx = col2im(W^T dY)\n")
    assert 'NotImplementedError("TODO: dx = col2im(W^T dY)")' in stub


def test_parse_cells_and_unbalanced_markers():
    cells = build.parse_cells("# %% [markdown]\n# # Title\n# text\n\n# %%\nx = 1\n\n")
    assert cells == [("markdown", "# Title\ntext"), ("code", "x = 1")]
    with pytest.raises(ValueError):
        build.stub_source("# BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError):
        build.stub_source("x = 1\n# END SOLUTION")
