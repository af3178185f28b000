"""python -m tinyalex.augment --show [IMAGE] --out grid.png [--seed 0]
python -m tinyalex.augment --bench [--backend numpy|cupy] [--repeats 5]"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tinyalex.augment", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--show",
        nargs="?",
        const="",
        metavar="IMAGE",
        help="draw every transform on IMAGE (default: skimage's astronaut)",
    )
    p.add_argument("--out", default="augment_grid.png", help="PNG to write for --show")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="--show: image side in pixels")
    p.add_argument("--cols", type=int, default=6, help="--show: draws per transform")
    p.add_argument("--bench", action="store_true", help="measure images/s for each preset")
    p.add_argument("--backend", default="numpy", choices=("numpy", "cupy"))
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    if args.show is None and not args.bench:
        p.print_usage(sys.stderr)
        print("error: give --show and/or --bench", file=sys.stderr)
        return 2
    if args.show is not None:
        from .show import load_image, render

        path = args.show or None
        if path is not None and not os.path.isfile(path):
            print(f"error: image file not found: {path}", file=sys.stderr)
            return 2
        try:
            image = load_image(path, args.size)
        except OSError as e:
            print(f"error: cannot read image {path}: {e}", file=sys.stderr)
            return 2
        rows = render(image, args.out, seed=args.seed, cols=args.cols)
        print(f"wrote {args.out} ({rows} rows x {args.cols} draws)")
    if args.bench:
        from ..backend import BackendError
        from .bench import bench, print_table

        try:
            rows = bench(args.backend, repeats=args.repeats)
        except BackendError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print_table(rows, args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
