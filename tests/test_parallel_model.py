"""The paper's model parallel: two towers under ``mpiexec -n 2`` equal the single-process
groups=2 network (forward, backward and three SGD steps, float64, 1e-10 relative)."""

import numpy as np
import pytest
from test_parallel_data import assert_same_training, ranks_run

from tinyalex.parallel import ParallelError, SelfComm, Tower
from tinyalex.parallel.check import parse_args, run
from tinyalex.parallel.tiny import tiny_alexnet
from tinyalex.parallel.towers import halves
from tinyalex.parallel.traffic import model_parallel_bytes


def test_two_towers_equal_one_network(tmp_path):
    ref = run(parse_args(["model", "--reference", "--out", "unused"]))
    got = ranks_run(2, ["model"], tmp_path)
    assert_same_training(got, ref)  # the whole network's params and grads, gathered
    expected = [
        sum(f + b for _, f, b in model_parallel_bytes(tiny_alexnet(), n)) for n in (6, 5, 2)
    ]
    assert list(got["bytes"]) == expected


def test_traffic_counts_the_papers_exchange_points():
    where = [w for w, _, _ in model_parallel_bytes(tiny_alexnet(), 4)]
    assert where == [
        "lrn1 halo",
        "lrn2 halo",
        "conv3 input",
        "fc6 input",
        "fc7 input",
        "fc8 input",
        "logits",
    ]


def test_towers_need_two_ranks():
    with pytest.raises(ParallelError, match="exactly 2 ranks"):
        Tower(tiny_alexnet(), SelfComm())


def test_halves():
    assert halves(7) == [4, 3] and halves(96) == [48, 48] and sum(halves(1)) == 1
    assert np.all(np.array(halves(1000)) == 500)
