"""A few SGD steps of both schemes on fixed data: the parallel tests' runs, and a GPU check.

    python -m tinyalex.parallel.check data --reference --out ref.npz   # one process
    mpiexec -n 3 python -m tinyalex.parallel.check data --out dp.npz --compare ref.npz
    mpiexec -n 2 python -m tinyalex.parallel.check model --out mp.npz --compare ref.npz

Every run trains ``tiny_alexnet`` (float64 by default) for one step per ``--batches``
entry, on the same random images, augmented (random 55px crops of 59px images, flips)
from one generator per global batch. ``--reference`` runs the plain single-process step
(forward, loss, backward, SGD) on whole batches: what every parallel run must equal. Rank
0 writes the whole network's parameters after the last step, the first step's logits and
gradients, each step's mean loss and the bytes it sent, and whether every rank ended with
the same bits (for towers: of the gathered network); ``--compare`` checks them.

On a GPU (``--backend cupy``): ``--transport nccl`` with one rank (one GPU each), and
``--transport staged`` for two ranks sharing one GPU (NCCL refuses two ranks on a device).
"""

from __future__ import annotations

import argparse
import hashlib
import sys

import numpy as np

from ..augment import make_pipeline
from ..backend import BACKENDS, to_device, to_numpy
from ..layers import SoftmaxCrossEntropy
from ..optim import SGD
from .comm import ParallelError, SelfComm
from .data_parallel import DataParallel
from .launch import TRANSPORTS, connect, world_rank
from .tiny import tiny_alexnet
from .towers import Tower


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tinyalex.parallel.check")
    p.add_argument("scheme", choices=("data", "model"))
    p.add_argument(
        "--batches",
        type=lambda v: [int(e) for e in v.split(",")],
        default=[6, 5, 2],
        help="each step's global batch (uneven splits; 2 images leave a third rank none)",
    )
    p.add_argument("--dtype", default="float64")
    p.add_argument("--backend", choices=BACKENDS, default="numpy")
    p.add_argument("--transport", choices=TRANSPORTS, default="auto")
    p.add_argument("--reference", action="store_true", help="one process, no communicator")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--compare",
        metavar="REF",
        help="a --reference run's file: print the largest relative difference; exit 1 "
        "above 1e-10 (float64) or 1e-4 (float32)",
    )
    return p.parse_args(argv)


def differences(got: dict, ref: dict) -> dict:
    """max |got - ref| / max |ref| for every parameter, first gradient and the logits."""
    keys = [k for k in ref if k.startswith(("param/", "first_grad/", "first_logits"))]
    return {k: float(np.abs(got[k] - ref[k]).max() / np.abs(ref[k]).max()) for k in keys}


def global_batch(batch: int, step: int, dtype, backend: str):
    """Step ``step``'s whole batch, drawn and augmented as one (every rank does the same)."""
    rng = np.random.default_rng([1, step])
    x = rng.integers(0, 256, size=(batch, 3, 59, 59)).astype(np.float32)
    view = make_pipeline("paper", 55)  # no mean, no PCA: random crop and flip
    xb = to_device((view(x, rng) / 64.0).astype(dtype), backend)
    return xb, to_device(rng.integers(0, 7, size=batch), backend)


def run(args) -> dict:
    comm = SelfComm() if args.reference else connect(args.backend, args.transport)
    model = tiny_alexnet(dtype=args.dtype).to(args.backend)
    net = Tower(model, comm) if args.scheme == "model" and not args.reference else model
    dp = DataParallel(model, comm) if args.scheme == "data" and not args.reference else None
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(net, 0.05, 0.9, 5e-4)
    result = {"loss": [], "bytes": []}
    for step, batch in enumerate(args.batches):
        xb, yb = global_batch(batch, step, args.dtype, args.backend)
        sent = comm.bytes_sent
        if dp is not None:
            rows = dp.rows(batch)
            loss, logits = dp.step(loss_fn, opt, xb[rows], yb[rows], batch)
            logits = np.concatenate(comm.gather_all_objects(to_numpy(logits)))
        else:  # the single-process step (or a tower, which gathers the logits itself)
            logits = net.forward(xb, train=True)
            loss = loss_fn.forward(logits, yb)
            net.backward(loss_fn.backward(), input_grad=False)
            opt.step()
        result["loss"].append(float(loss))
        result["bytes"].append(comm.bytes_sent - sent)
        if step == 0:
            grads = net.gather_params(net.grads) if isinstance(net, Tower) else net.grads
            result["first_logits"] = to_numpy(logits)
            result.update({f"first_grad/{k}": to_numpy(v) for k, v in grads.items()})
    params = net.gather_params() if isinstance(net, Tower) else net.params
    result.update({f"param/{k}": to_numpy(v) for k, v in params.items()})
    mine = hashlib.sha256(b"".join(to_numpy(v).tobytes() for v in params.values()))
    result["identical"] = len(set(comm.gather_all_objects(mine.hexdigest()))) == 1
    result["ranks"], result["transport"] = comm.size, comm.transport
    return result if comm.rank == 0 else {}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except ParallelError as e:
        if not world_rank():
            print(f"tinyalex.parallel.check: error: {e}", file=sys.stderr)
        return 2
    if not result:
        return 0
    np.savez(args.out, **{k: np.asarray(v) for k, v in result.items()})
    print(
        f"{args.scheme} parallel over {result['ranks']} rank(s) ({result['transport']}): "
        f"losses {', '.join(f'{v:.6f}' for v in result['loss'])}; bytes sent by rank 0 "
        f"per step {', '.join(f'{v:,}' for v in result['bytes'])}; ranks' parameters "
        + ("identical" if result["identical"] else "DIFFER")
    )
    if args.compare:
        with np.load(args.compare) as f:
            worst = max(differences(result, dict(f)).items(), key=lambda kv: kv[1])
        limit = 1e-10 if args.dtype == "float64" else 1e-4
        verdict = "equal" if worst[1] <= limit and result["identical"] else "DIFFERENT"
        print(
            f"against {args.compare}: largest relative difference {worst[1]:.2e} ({worst[0]}): "
            f"{verdict} (limit {limit:g})"
        )
        return 0 if verdict == "equal" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
