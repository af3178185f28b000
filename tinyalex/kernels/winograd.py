"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with fewer products.

Direct convolution takes 9 multiply-adds per output pixel and input channel. Winograd's
F(2x2, 3x3) (Lavin and Gray, *Fast Algorithms for Convolutional Neural Networks*, 2016) takes a
2x2 tile of outputs from the 4x4 input patch d under it and the 3x3 kernel g as

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise; Y 2x2, d 4x4, g 3x3)

with the constant matrices below: 16 products per tile, 4 per output pixel, against 9. Summed
over input channels, the elementwise product becomes 16 matrix products, one per position
(a, b) of the 4x4 transformed tile, and those carry almost all the work:

    U[ab, o, c] = (G W[o, c] G^T)[a, b]                       filters    (16, O, C/G)
    V[ab, c, t] = (B^T d[c, t] B)[a, b]                       inputs     (16, C, T)
    M[ab, o, t] = sum_{c in group(o)} U[ab, o, c] V[ab, c, t]  per group  (16, O, T)
    y[n, o, 2 th + i, 2 tw + j] = (A^T M[:, o, t] A)[i, j] + b[o]        (N, O, OH, OW)

where t = (n, th, tw) runs over the T = N * ceil(OH/2) * ceil(OW/2) output tiles and the
patch d[c, t] is the input (padded by p, zeros outside) at rows 2 th - p ... 2 th - p + 3 and
columns 2 tw - p ... 2 tw - p + 3. A tile past the last output row or column is computed and
not written (13x13 maps: 7x7 tiles, 16% extra products).

The input gradient of such a layer is the same kind of convolution (layers/conv.py): dy
padded by 2 - p, the kernel flipped in space and transposed in channels, so :func:`dx_weights`
and :func:`conv` give it too (``p <= 2``).

Exact in real arithmetic; in floating point the transforms add and subtract up to 9 terms per
value, so results differ from direct convolution by a few roundings (float64: 1e-15 relative).

This module is the NumPy/CuPy twin (array operations, either backend); the GPU runs
``winograd_input`` and ``winograd_output`` in kernels/cuda.py, one thread per tile, and the
16 x G products as one batched cuBLAS GEMM.
"""

from __future__ import annotations

import numpy as np

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def applies(k: int, stride: int, padding: int) -> bool:
    """Whether F(2x2, 3x3) computes this convolution and its input gradient."""
    return k == 3 and stride == 1 and 0 <= padding <= 2


def output_size(h: int, w: int, padding: int) -> tuple[int, int]:
    """(OH, OW) of a 3x3 stride-1 convolution of an h x w map padded by ``padding``."""
    return h + 2 * padding - 2, w + 2 * padding - 2


def tiles(oh: int, ow: int) -> tuple[int, int]:
    """(TH, TW): 2x2 output tiles down and across."""
    return (oh + 1) // 2, (ow + 1) // 2


def filter_transform(Wg, xp=np):
    """U = G g G^T for every filter: Wg (G, O/G, C/G*9) -> (16 G, O/G, C/G), row ab of the
    4x4 transformed tile first, so the batch of GEMMs is (ab, group)."""
    groups, og, ckk = Wg.shape
    w = Wg.reshape(groups, og, ckk // 9, 3, 3)
    g = xp.asarray(G, dtype=Wg.dtype)
    u = xp.einsum("ai,gocij,bj->abgoc", g, w, g)  # (4, 4, G, O/G, C/G)
    return xp.ascontiguousarray(u.reshape(16 * groups, og, ckk // 9))


def input_transform(x, padding: int, oh: int, ow: int, xp=np):
    """V = B^T d B for every 4x4 input patch: x (N, C, H, W) -> (16, C, T)."""
    n, c, h, w = x.shape
    th, tw = tiles(oh, ow)
    # padded so every patch is inside: rows -p ... 2 TH - p + 1
    xpad = xp.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    rows, cols = min(h, 2 * th + 2 - padding), min(w, 2 * tw + 2 - padding)
    xpad[:, :, padding : padding + rows, padding : padding + cols] = x[:, :, :rows, :cols]
    d = xp.stack(
        [
            xp.stack([xpad[:, :, i : i + 2 * th : 2, j : j + 2 * tw : 2] for j in range(4)])
            for i in range(4)
        ]
    )  # (4, 4, N, C, TH, TW): d[i, j] = the patch's entry (i, j) for every tile
    bt = xp.asarray(BT, dtype=x.dtype)
    v = xp.einsum("ai,ijncyx,bj->abcnyx", bt, d, bt)
    return xp.ascontiguousarray(v.reshape(16, c, n * th * tw))


def output_transform(m, b, n: int, oh: int, ow: int, xp=np):
    """y = A^T m A + b: m (16, O, T) -> (N, O, OH, OW)."""
    o = m.shape[1]
    th, tw = tiles(oh, ow)
    at = xp.asarray(AT, dtype=m.dtype)
    y = xp.einsum("ia,aboxyz,jb->oxyizj", at, m.reshape(4, 4, o, n, th, tw), at)
    y = y.reshape(o, n, 2 * th, 2 * tw)[:, :, :oh, :ow] + b.reshape(o, 1, 1, 1)
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3))


def products(u, v, groups: int, matmul=np.matmul):
    """M[ab, o, t] = U[ab, o, :] . V[ab, group(o), t]: (16 G) matrix products, by ``matmul``
    (``xp.matmul``; the GPU's batched cuBLAS GEMM). u (16 G, O/G, C/G), v (16, C, T)."""
    cg, t = v.shape[1] // groups, v.shape[2]
    m = matmul(u, v.reshape(16 * groups, cg, t))  # (16 G, O/G, T)
    return m.reshape(16, groups * u.shape[1], t)


def conv(x, Wg, b, padding: int, xp=np):
    """y = conv(x, W) + b for a 3x3 stride-1 layer, by F(2x2, 3x3). Wg (G, O/G, C/G*9)."""
    n, _, h, w = x.shape
    oh, ow = output_size(h, w, padding)
    u = filter_transform(Wg, xp)
    m = products(u, input_transform(x, padding, oh, ow, xp), Wg.shape[0], xp.matmul)
    return output_transform(m, b, n, oh, ow, xp)


def dx_weights(Wg):
    """The kernel of the input gradient: W'[c, o, i, j] = W[o, c, 2 - i, 2 - j] per group,
    as (G, C/G, O/G*9), so that dx = conv(dy, W', 0) with padding 2 - p."""
    groups, og, ckk = Wg.shape
    w = Wg.reshape(groups, og, ckk // 9, 3, 3)[:, :, :, ::-1, ::-1]
    return w.transpose(0, 2, 1, 3, 4).reshape(groups, ckk // 9, og * 9)
