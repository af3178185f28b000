"""python -m tinyalex.augment --show [IMAGE] --out grid.png [--seed 0]
python -m tinyalex.augment --bench [--backend numpy|cupy] [--repeats 5]"""

from __future__ import annotations

import sys
from pathlib import Path

from ..backend import BACKENDS
from ..cli import ArgumentParser, OutputError, UserError, positive_int, run_command

PROG = "python -m tinyalex.augment"


def parse_args(argv=None):
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument(
        "--show",
        nargs="?",
        const="",
        metavar="IMAGE",
        help="draw every transform on IMAGE (default: skimage's astronaut)",
    )
    p.add_argument("--out", default="augment_grid.png", help="image file to write for --show")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=positive_int, default=256, help="--show: image side, pixels")
    p.add_argument("--cols", type=positive_int, default=6, help="--show: draws per transform")
    p.add_argument("--bench", action="store_true", help="measure images/s for each preset")
    p.add_argument("--backend", default="numpy", choices=BACKENDS)
    p.add_argument("--repeats", type=positive_int, default=5)
    args = p.parse_args(argv)
    if args.show is None and not args.bench:
        p.error("give --show and/or --bench")
    return args


def check_out(path: str) -> None:
    """OutputError now, before any drawing, if the grid could not be written to ``path``."""
    from matplotlib.backend_bases import FigureCanvasBase

    from ..rundir import check_output_file

    check_output_file(path, "--out")
    kinds = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in kinds:
        raise UserError(f"--out {path}: give a file ending in one of .{', .'.join(sorted(kinds))}")


def show(args) -> None:
    from .show import load_image, render

    check_out(args.out)
    path = args.show or None
    if path is not None and not Path(path).is_file():
        raise UserError(f"image file not found: {path}")
    try:
        image = load_image(path, args.size)
    except ImportError as e:
        raise UserError(f"no IMAGE given and {e.name} is missing: pip install scikit-image") from e
    except OSError as e:
        raise UserError(f"cannot read image {path}: {e}") from e
    try:
        rows = render(image, args.out, seed=args.seed, cols=args.cols)
    except OSError as e:
        raise OutputError(f"cannot write {args.out}: {e.strerror or e}") from e
    print(f"wrote {args.out} ({rows} rows x {args.cols} draws)")


def main_body(args) -> int:
    if args.show is not None:
        show(args)
    if args.bench:
        from .bench import bench, print_table

        print_table(bench(args.backend, repeats=args.repeats), args.backend)
    return 0


def main(argv=None) -> int:
    return run_command(PROG, main_body, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
