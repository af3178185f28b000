"""``python -m tinyalex.train --parallel data|model``: the trainer, spread over MPI ranks.

:class:`ParallelTrainer` is tinyalex.train's Trainer with four parts changed; the loop,
the schedule, the checkpoint format and the messages are the single-process ones.

    step        data: DataParallel.step on this rank's rows of the global batch, then the
                logits gathered (the error count sees the whole batch); model: the tower
    evaluate    data: each rank scores its share of the validation set, sums combined;
                model: both ranks score the whole set through the towers
    save        rank 0 alone writes; the towers' pieces are gathered into the whole
                network first, so every checkpoint is a single-process checkpoint
    output      rank 0 chooses and locks the folder; other ranks write nowhere

So a checkpoint moves freely: written by N ranks, it resumes on M ranks, on towers, or in
one process, and the other way round. Every rank loads the data and draws the same
batches (the loader's order and augmentation depend on the seed alone).

Errors: a check that fails on every rank (bad flags, N not dividing --batch-size, a rank
without a GPU) is printed once, by rank 0, and every rank exits with code 2. A failure on
one rank alone (rank 0 cannot write its checkpoint) is passed to the others through
:func:`~tinyalex.parallel.launch.agree` before anyone waits on a collective again.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from functools import partial
from pathlib import Path

import numpy as np

from ..cli import USER_ERRORS, report
from ..run import score
from ..step import train_step
from ..train import PROG, Diverged, Trainer
from .comm import ParallelError
from .data_parallel import DataParallel, shard
from .launch import agree, connect, share_cores, world_rank
from .towers import Tower
from .traffic import data_parallel_bytes, model_parallel_bytes

SCHEMES = ("none", "data", "model")


class ParallelTrainer(Trainer):
    def __init__(self, args, comm):
        self.comm, self.scheme = comm, args.parallel
        self._scratch = None
        threads = share_cores(comm) if (args.backend or "numpy") == "numpy" else None
        if comm.rank:  # progress, notes and messages come from rank 0 alone; a crash's
            # traceback still reaches the terminal (an internal bug keeps its traceback)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (process's life)
            sys.excepthook = partial(traceback.print_exception, file=sys.__stderr__)
        super().__init__(args)
        batch = self.config["batch_size"]
        if self.scheme == "data":
            self.dp = DataParallel(self.model, comm)
        if self.scheme == "data":
            share = f"{batch // comm.size} images per rank per step"
        else:
            whole = self.model.whole_count
            mine = sum(int(np.prod(p.shape)) for p in self.model.params.values())
            share = f"each tower holds about half the {whole:,} parameters (rank 0: {mine:,})"
        cpu = f", {threads} CPU thread(s) per rank" if threads else ""
        print(f"parallel {self.scheme} over {comm.size} ranks ({comm.transport}{cpu}): {share}")
        print(
            f"bytes each of 2 ranks sends per step: data parallel {self.traffic[0]:,}, "
            f"towers {self.traffic[1]:,} at batch {batch} (python -m tinyalex.parallel.traffic)",
            flush=True,
        )

    # ---- construction: rank 0 owns the output folder; the towers replace the model
    def _choose_output(self):
        chosen, problem = None, None
        if self.comm.rank == 0:
            try:
                chosen = super()._choose_output()
            except USER_ERRORS as e:
                problem = str(e)
        agree(self.comm, problem)
        if self.comm.rank == 0:
            return chosen
        self._scratch = tempfile.TemporaryDirectory(prefix="tinyalex-rank")
        return Path(self._scratch.name), None

    def _load_data(self):
        batch, size = self.config["batch_size"], self.comm.size
        if self.scheme == "model" and size != 2:  # Tower says so too; here before the load
            raise ParallelError(f"--parallel model runs on exactly 2 ranks, not {size}")
        if self.scheme == "data" and batch % size:
            raise ParallelError(
                f"--batch-size {batch} does not split evenly over {size} ranks; "
                f"give a multiple of {size}"
            )
        return super()._load_data()

    def _restore_or_build_model(self):
        model, norm = super()._restore_or_build_model()
        batch = self.config["batch_size"]
        self.traffic = (
            data_parallel_bytes(model, 2),
            sum(f + b for _, f, b in model_parallel_bytes(model, batch)),
        )
        if self.scheme != "model":
            return model, norm
        tower = Tower(model, self.comm)
        if self.resumed:  # the checkpoint holds the whole network's velocities: cut ours
            self.resumed["optimizer"].update(tower.cut(self.resumed["optimizer"], "velocity."))
        return tower, norm

    # ---- the loop's parts
    def train_epoch(self, stop):
        self._stop = stop
        return super().train_epoch(stop)

    def step(self, xb, yb):
        if self.scheme == "model":
            loss, logits = train_step(self.model, self.loss_fn, self.opt, xb, yb)
        else:
            n, size = len(yb), self.comm.size
            rows = self.dp.rows(n)
            loss, logits = self.dp.step(self.loss_fn, self.opt, xb[rows], yb[rows], n)
            sizes = [len(range(n)[shard(n, size, r)]) for r in range(size)]
            logits = self.comm.allgather(logits, 0, sizes)  # the error count sees all rows
        # Ctrl-C reaches the ranks at slightly different moments: stop together or not at all.
        if self.comm.allreduce_scalar(float(self._stop.requested)):
            self._stop.requested = True
        return loss, logits

    def evaluate(self) -> dict:
        if self.scheme == "model":
            return super().evaluate()
        c, data = self.config, self.data
        rows = shard(len(data.val_y), self.comm.size, self.comm.rank)
        mine = {"loss": 0.0, "top1_error": 0.0, "top5_error": 0.0}
        n = rows.stop - rows.start
        if n:
            mine = score(
                self.model, data.val_x[rows], data.val_y[rows], self.eval_view,
                c["batch_size"], c["backend"],
            )  # fmt: skip
        return {k: self.comm.allreduce_scalar(v * n) / len(data.val_y) for k, v in mine.items()}

    def checkpoint_state(self) -> tuple[dict, dict]:
        params, optimizer = super().checkpoint_state()
        if self.scheme == "model":
            params = self.model.gather_params()
            optimizer = {**optimizer, **self.model.gather_params(optimizer, "velocity.")}
        return params, optimizer

    def check_finite(self, where: str) -> None:
        """Diverged on every rank if any rank's weights (a tower's, say) are not finite."""
        problem = None
        try:
            super().check_finite(where)
        except Diverged as e:
            problem = str(e)
        problems = [p for p in self.comm.gather_all_objects(problem) if p]
        if problems:
            raise Diverged(problems[0])

    def save(self) -> Path:
        if self.comm.rank:  # the gathers are collective: take part, write nothing
            self.check_finite("the save")
            self.checkpoint_state()
            agree(self.comm, None)
            return self.out / "checkpoint.npz"
        try:
            path = super().save()
        except USER_ERRORS as e:
            agree(self.comm, str(e))
            raise
        agree(self.comm, None)
        return path


def main(args) -> int:
    """Run ``args`` (tinyalex.train's parsed command line) on this rank."""
    trainer = None
    try:
        trainer = ParallelTrainer(args, connect(args.backend or "numpy", args.transport))
        return trainer.run()
    except USER_ERRORS + (ParallelError,) as e:
        if world_rank() == 0:
            report(PROG, e)
        return 2
    except Diverged as e:
        if world_rank() == 0:
            print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, unsaved (as tinyalex.train)
        if world_rank() == 0:
            kept = trainer.last_good_text() if trainer else "nothing was trained"
            print(f"{PROG}: interrupted, not saved: {kept}", file=sys.stderr)
        return 130
