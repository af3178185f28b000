# %% [markdown]
# # Lesson 09 — Data augmentation on real photographs
#
# *Study time: about 60 minutes. Before this: lesson 00 (the network and its input size).*
#
# **The paper's claim (§4.1).** "The easiest and most common method to reduce overfitting on image
# data is to artificially enlarge the dataset using label-preserving transformations." AlexNet uses
# two, cheap enough to run on the CPU while the GPUs train on the previous batch:
#
# 1. random 224×224 crops of the 256×256 images, and their horizontal mirror images;
# 2. "PCA colour": a random multiple of the principal components of the RGB colours added to every
#    pixel, which lowered top-1 error by over 1%.
#
# At test time it averages the softmax over ten fixed crops. This lesson draws each on
# scikit-image's bundled photographs, has you write the colour statistics, the colour shift and the
# ten crops, checked against `tinyalex.augment`, then shows TensorFlow's CIFAR-10 distortions and
# the geometric warps tinyalex adds. Augmentation has no backward pass (it changes the data, not
# the network), so the checks here compare values only.
#
# Conventions in `tinyalex/augment`: a batch is float32 (N, C, H, W) in 0–255 pixel units, and
# every transform is `t(batch, rng) -> batch` with a NumPy `Generator` that draws one set of random
# parameters per image.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from matplotlib_inline.backend_inline import set_matplotlib_formats
from PIL import Image
from skimage import data

from tinyalex.augment import (
    TEN_CROP_ORDER,
    PCAColour,
    RandomAffine,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomLensDistortion,
    RandomRotate,
    RandomScale,
    RandomShear,
    RandomTranslate,
    crop_at,
    lens_distort,
    make_pipeline,
    pca_colour_stats,
    rotation,
    ten_crop,
    warp_affine,
)
from tinyalex.exercise import cmp, expect_fail

np.set_printoptions(precision=4, suppress=True)
plt.rcParams["figure.dpi"] = 72  # small images in the stored notebook
# photographs: stored as JPEG in the notebook (a tenth of the PNG size)
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 70})


def square256(photo):
    """Shorter side to 256 pixels, then the central 256x256 square (P §2)."""
    img = Image.fromarray(photo)
    w, h = img.size
    scale = 256 / min(w, h)
    img = img.resize((max(256, round(w * scale)), max(256, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - 256) // 2, (h - 256) // 2
    return np.asarray(img.crop((left, top, left + 256, top + 256)))


def to_batch(*images):
    """(H, W, 3) uint8 images -> float32 (N, 3, H, W), the augmentation input."""
    return np.stack([im.transpose(2, 0, 1) for im in images]).astype(np.float32)


def show(batch, titles=None, size=1.7, add=0.0):
    """Draw a (N, 3, H, W) batch in a row (add: a value to add back first, e.g. a mean)."""
    n = len(batch)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size + 0.3), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(np.clip(batch[i] + add, 0, 255).astype(np.uint8).transpose(1, 2, 0))
        ax.axis("off")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    plt.tight_layout()
    plt.show()


astronaut, coffee = square256(data.astronaut()), square256(data.coffee())
show(to_batch(astronaut, coffee), ["astronaut, 256x256", "coffee, 256x256"], size=2.5)

# %% [markdown]
# ## 1. Random crops and flips, and the "factor of 2048"
#
# During training the network sees a random 224×224 patch of each 256×256 image, mirrored
# left-right half the time. `RandomCrop` draws a top-left corner $(o_y, o_x)$ uniformly in
# $0 \dots 256-224$ for each image and cuts out the patch (`crop_at`, one gather for the whole
# batch); `RandomFlip` reverses the column axis, `batch[..., ::-1]`.
#
# The paper counts this as enlarging the training set "by a factor of 2048": $32^2 \cdot 2$.
# Counting both ends there are $256 - 224 + 1 = 33$ offsets per axis, so the exact number of
# distinct views is $33^2 \cdot 2 = 2178$ (docs/conventions.md §5). They overlap heavily: "the
# resulting training examples are, of course, highly interdependent".

# %%
print("paper:", 32**2 * 2, "  exact:", (256 - 224 + 1) ** 2 * 2)
rng = np.random.default_rng(6)
batch = to_batch(*[astronaut] * 5)
oy, ox = rng.integers(0, 256 - 224 + 1, 5), rng.integers(0, 256 - 224 + 1, 5)
crops = crop_at(batch, oy, ox, 224)  # what RandomCrop(224) does with these offsets
flips = rng.random(5) < 0.5
crops = np.where(flips[:, None, None, None], crops[..., ::-1], crops)

fig, ax = plt.subplots(figsize=(2.6, 2.6))
ax.imshow(astronaut)
for y, x in zip(oy, ox, strict=True):
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 224, 224, fill=False, lw=1, color="yellow"))
ax.set_title("five 224x224 crop positions", fontsize=9)
ax.axis("off")
plt.show()
show(crops, [f"({y},{x}){' flipped' if f else ''}" for y, x, f in zip(oy, ox, flips, strict=True)])

# %% [markdown]
# ## 2. PCA colour augmentation
#
# Treat every pixel of the training set as a point in 3-D colour space and take the 3×3
# covariance $\Sigma$ of those points. Its eigenvectors $p_1, p_2, p_3$ (unit length, $\Sigma p_i =
# \lambda_i p_i$) are the directions in which the colours vary, the eigenvalues $\lambda_i$ the
# variances along them. For each training image, draw $\alpha_i \sim N(0, 0.1^2)$ once and add
#
# $$[\,p_1\ p_2\ p_3\,]\,[\alpha_1\lambda_1,\ \alpha_2\lambda_2,\ \alpha_3\lambda_3]^\top$$
#
# to *every* pixel. "Object identity is invariant to changes in the intensity and color of the
# illumination" — so the label stays.
#
# **Units.** $\lambda_i$ is a variance. On 0–255 pixels $\lambda_1$ is in the thousands, so
# $0.1\,\lambda_1$ would move colours by hundreds of levels; the paper's formula read literally only
# makes sense for pixels in [0, 1]. The authors' later code (cuda-convnet2) scales by the standard
# deviations $\sqrt{\lambda_i}$ in pixel units, and so does tinyalex (docs/conventions.md §5):
# the shift is $\sum_i \alpha_i \sqrt{\lambda_i}\, p_i$, a tenth of the colour spread along each
# axis.
#
# ## 3. Exercise: the colour statistics and the shift
#
# Write `colour_pca(x)`: the eigenvalues (descending) and eigenvectors (as columns) of the
# covariance of all pixels of a (N, 3, H, W) batch. `np.cov` and `np.linalg.eigh` do the work;
# mind the layout (one row per pixel) and that `eigh` sorts ascending. Then write
# `colour_shift(eigvals, eigvecs, alpha)`: the (N, 3) shifts for (N, 3) draws `alpha`.


# %%
def colour_pca(x):
    """(N, 3, H, W) pixels -> eigvals (3,) descending, eigvecs (3, 3) with p_i as columns."""
    # BEGIN SOLUTION: pixels as rows (N*H*W, 3), covariance, eigh, reverse the order
    pixels = x.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    eigvals, eigvecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
    return eigvals[::-1], eigvecs[:, ::-1]
    # END SOLUTION


def colour_shift(eigvals, eigvecs, alpha):
    """(N, 3) RGB shifts: row n is sum_i alpha[n, i] sqrt(eigvals[i]) p_i."""
    # BEGIN SOLUTION: scale each alpha by sqrt(lambda), then combine the eigenvector columns
    return (alpha * np.sqrt(eigvals)) @ eigvecs.T
    # END SOLUTION


# %% [markdown]
# **Check** on four photographs against `tinyalex.augment.pca_colour_stats` and `PCAColour`. An
# eigenvector's sign is arbitrary, so the check compares what does not depend on it: the
# eigenvalues, the covariance rebuilt from the eigenvectors, $P\,\mathrm{diag}(\lambda)\,P^\top$, and
# the projector $p_i p_i^\top$ of each. The shifts are compared draw for draw: `PCAColour` draws
# `alpha = rng.normal(0, 0.1, (n, 3))`, so the same seed gives the same `alpha`.

# %%
photos = to_batch(
    *[square256(p()) for p in (data.astronaut, data.chelsea, data.coffee, data.rocket)]
)
eigvals, eigvecs = pca_colour_stats(photos)
my_vals, my_vecs = colour_pca(photos)
cmp("eigenvalues", my_vals, eigvals, rtol=1e-8)
cmp("covariance", my_vecs * my_vals @ my_vecs.T, eigvecs * eigvals @ eigvecs.T, rtol=1e-8)
for i in range(3):
    cmp(
        f"p{i + 1} p{i + 1}^T",
        np.outer(my_vecs[:, i], my_vecs[:, i]),
        np.outer(eigvecs[:, i], eigvecs[:, i]),
        rtol=1e-6,
        atol=1e-9,
    )
alpha = np.random.default_rng(0).normal(0.0, 0.1, size=(5, 3))
expected = PCAColour(eigvals, eigvecs, std=0.1).shifts(5, np.random.default_rng(0))
cmp("colour shifts", colour_shift(eigvals, eigvecs, alpha), expected)

# %% [markdown]
# The check catches the paper's formula taken literally in 0–255 units ($\alpha_i\lambda_i$ instead
# of $\alpha_i\sqrt{\lambda_i}$):

# %%
message = expect_fail(cmp, "shifts with lambda", (alpha * eigvals) @ eigvecs.T, expected)

# %% [markdown]
# ## 4. The eigenvectors, drawn
#
# Two thousand pixels of the four photographs as points in RGB space, each drawn in its own colour,
# and the three eigenvectors through the mean colour, drawn $\pm 1.5\sqrt{\lambda_i}$ long (one and a
# half standard deviations each way).

# %%
pick = np.random.default_rng(0).choice(photos.shape[0] * 256 * 256, 2000, replace=False)
pixels = photos.transpose(0, 2, 3, 1).reshape(-1, 3)[pick]
centre = photos.mean(axis=(0, 2, 3))
fig = plt.figure(figsize=(5, 4.5))
ax = fig.add_subplot(projection="3d")
ax.scatter(*pixels.T, c=pixels / 255, s=3, alpha=0.6)
for i, colour in enumerate(("k", "m", "c")):
    ends = centre + np.outer([-1.5, 1.5], np.sqrt(eigvals[i]) * eigvecs[:, i])
    label = f"p{i + 1}: sqrt(lambda) = {np.sqrt(eigvals[i]):.1f}"
    ax.plot(*ends.T, c=colour, lw=3, label=label)
ax.view_init(elev=20, azim=-35)
ax.set(xlabel="R", ylabel="G", zlabel="B", xlim=(0, 255), ylim=(0, 255), zlim=(0, 255))
ax.legend(fontsize=8, loc="upper left")
plt.tight_layout()
plt.show()
print("eigenvectors (columns p1, p2, p3; rows R, G, B):\n", eigvecs)

# %% [markdown]
# $p_1$ has three entries of one sign and similar size: **brightness**, by far the largest spread.
# $p_2$ and $p_3$ are colour contrasts with much smaller spreads (roughly warm against cool, and
# green against magenta). ImageNet's often-quoted statistics look the same. Moving the coffee photo
# by ±1 standard deviation along each axis (ten times a typical training shift) shows what each
# one does; signs are turned so that each vector's entries sum to a positive number:

# %%
base = to_batch(coffee)[0]
axes_display = eigvecs * np.sign(eigvecs.sum(axis=0))
views, titles = [], []
for i in range(3):
    for sign in (-1, 1):
        shift = sign * np.sqrt(eigvals[i]) * axes_display[:, i]
        views.append(base + shift[:, None, None].astype(np.float32))
        titles.append(f"{sign:+d} sd along p{i + 1}")
show(np.stack(views), titles)
show(
    PCAColour(eigvals, eigvecs, std=0.1)(to_batch(*[coffee] * 6), np.random.default_rng(3)),
    ["std 0.1 (the paper's)"] * 6,
)

# %% [markdown]
# At the paper's strength the shifts are a few pixel levels: hard to see, as intended.
#
# ## 5. Exercise: ten-crop testing
#
# At test time the network averages its softmax over "five 224×224 patches (the four corner
# patches and the center patch) as well as their horizontal reflections". Without that the paper's
# ILSVRC-2010 errors are 39.0% / 18.3% top-1 / top-5 instead of 37.5% / 17.0%. Write `ten_crops`
# returning (10, N, C, size, size) in `TEN_CROP_ORDER`: top-left, top-right, bottom-left,
# bottom-right, centre (top-left corner at `((H - size) // 2, (W - size) // 2)`), then the same five
# mirrored.

# %%
print(TEN_CROP_ORDER)


def ten_crops(batch, size):
    """(N, C, H, W) -> (10, N, C, size, size): four corners and centre, then mirrored."""
    # BEGIN SOLUTION: five slices, stack them, then append their [..., ::-1] mirrors
    h, w = batch.shape[-2:]
    corners = [
        (0, 0),
        (0, w - size),
        (h - size, 0),
        (h - size, w - size),
        ((h - size) // 2, (w - size) // 2),
    ]
    views = np.stack([batch[..., y : y + size, x : x + size] for y, x in corners])
    return np.concatenate([views, views[..., ::-1]])
    # END SOLUTION


# %% [markdown]
# **Check** against `tinyalex.augment.ten_crop`, exactly (it is only copying), on a batch of odd
# sizes so that an off-by-one in the centre shows; and a centre computed with rounding up fails:

# %%
odd = np.random.default_rng(0).standard_normal((2, 3, 13, 11))
cmp("ten crops", ten_crops(odd, 8), ten_crop(odd, 8), rtol=0, atol=0)
rounded_up = ten_crop(odd[..., 1:, 1:], 8)  # centre one pixel lower and further right
message = expect_fail(cmp, "centre rounded up", rounded_up[4], ten_crop(odd, 8)[4], rtol=0, atol=0)

# %%
views = ten_crop(to_batch(astronaut), 224)
fig, ax = plt.subplots(figsize=(2.6, 2.6))
ax.imshow(astronaut)
places = [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
for (y, x), colour in zip(places, ["r", "g", "b", "m", "yellow"], strict=True):
    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 224, 224, fill=False, lw=1.5, color=colour))
ax.set_title("the five positions", fontsize=9)
ax.axis("off")
plt.show()
show(views[:, 0], [name.replace(" flipped", "\nflipped") for name in TEN_CROP_ORDER], size=1.2)

# %% [markdown]
# Lesson 10 measures what the ten crops buy on Fashion-MNIST; `python -m tinyalex.evaluate
# CHECKPOINT --crops 10` does it for any trained run.
#
# ## 6. TensorFlow's CIFAR-10 distortions
#
# The AlexNet-style CIFAR-10 network of TensorFlow's tutorial (`cifar_alexnet()`) has its own
# recipe: a random 24×24 crop of the 32×32 image, a random flip, a random brightness change
# (add $\delta \sim U(-63, 63)$ to every pixel), a random contrast change (scale each image's
# deviations from its per-channel mean by $f \sim U(0.2, 1.8)$), then per-image standardisation,
# $(x - \text{mean}) / \max(\text{std}, 1/\sqrt{\text{number of values}})$.
# `make_pipeline("tf", crop)` builds the chain; the amounts are in pixel units, so they look the
# same at any resolution.

# %%
tf_pipeline = make_pipeline("tf", 224)
print(tf_pipeline)
rng = np.random.default_rng(5)
four = to_batch(*[coffee] * 4)
show(RandomBrightness(63)(four, rng), ["brightness ±63"] * 4)
show(RandomContrast(0.2, 1.8)(four, rng), ["contrast 0.2-1.8"] * 4)
standardised = tf_pipeline(four, rng)
print(
    "after the pipeline: per-image mean",
    standardised.mean(axis=(1, 2, 3)).round(4) + 0.0,
    "std",
    standardised.std(axis=(1, 2, 3)).round(4),
)
show(standardised * 60, ["whole tf pipeline\n(shown as 60 z + 128)"] * 4, add=128)

# %% [markdown]
# Per-image standardisation removes the brightness change entirely and resets the overall spread,
# but not all of the contrast change: TF's contrast step works per channel, the standardisation over
# all three at once, so a low-contrast draw comes out with its colour cast exaggerated. The paper's
# pipeline subtracts one mean image for the whole training set instead and keeps each image's own
# brightness and contrast.
#
# ## 7. Geometric warps and lens distortion (beyond the paper)
#
# tinyalex adds the augmentations later work made common. Every geometric warp is a 3×3 matrix
# $M$ acting on homogeneous pixel coordinates $[x, y, 1]^\top$. To draw the output, each output pixel
# asks where it came from, $M^{-1}[x, y, 1]^\top$, and reads the input there by bilinear
# interpolation (`warp_affine`). Rotation, scaling and shear act about the image centre $c$:
# $M = T(c)\,A\,T(-c)$. A chain of them is one matrix product, so `RandomAffine` interpolates once.

# %%
print(
    "rotation by 90 degrees about the centre of a 256x256 image:\n",
    rotation([90.0], 256, 256)[0].round(3),
)
angles = np.array([-30.0, -15.0, 0.0, 15.0, 30.0])
five = to_batch(*[astronaut] * 5)
show(warp_affine(five, rotation(angles, 256, 256)), [f"{a:+.0f}°" for a in angles])
rng = np.random.default_rng(2)
rows = {
    "scale 0.7-1.3 per axis": RandomScale((0.7, 1.3), (0.7, 1.3)),
    "shear ±20°": RandomShear(20.0),
    "all four, one warp": RandomAffine(
        [
            RandomRotate(10.0),
            RandomScale((0.9, 1.1), (0.9, 1.1)),
            RandomShear(8.0),
            RandomTranslate(0.05, 0.05),
        ]
    ),
}
for name, transform in rows.items():
    show(transform(five, rng), [name] * 5, size=1.3)

# %% [markdown]
# **Lens distortion** moves pixels along rays from the centre (Brown's polynomial model, 1966): the
# output pixel at normalised radius $r$ shows the input at $r(1 + k_1 r^2 + k_2 r^4)$; $k_1 > 0$
# is barrel distortion, $k_1 < 0$ pincushion. The presets `"geometric"` and `"all"` put these before
# the paper's crop, flip and PCA colour (`tinyalex/augment/presets.py`);
# `python -m tinyalex.augment --show --out grid.png` draws every transform in one grid.

# %%
k1 = np.array([-0.4, -0.2, 0.0, 0.2, 0.4])
show(lens_distort(five, k1, np.zeros(5)), [f"k1 = {k:+.1f}" for k in k1], size=1.3)
mean_rgb = five[0].mean(axis=(1, 2))
for preset in ("paper", "all"):
    pipe = make_pipeline(preset, 224, mean=mean_rgb, pca=(eigvals, eigvecs))
    show(
        pipe(five, np.random.default_rng(6)),
        [f"preset '{preset}'"] * 5,
        size=1.3,
        add=mean_rgb[:, None, None],
    )

# %% [markdown]
# ## Questions to think about
#
# 1. The crops make 2178 views of each image, yet the paper still overfits without dropout. Why do
#    2178 views not act like 2178 times as much data?
# 2. PCA colour shifts every pixel of an image by the same amount. Which changes of illumination
#    does that model, and which (shadows, coloured light from one side) does it not?
# 3. Ten-crop testing costs ten forward passes per image. Which of the ten views would you drop
#    first if you could afford only two, and why?
# 4. Which of the geometric warps would be *wrong* for a dataset of handwritten digits, or of
#    clothing photographed the right way up, like Fashion-MNIST?
# 5. Why does `RandomAffine` combine its parts into one matrix before warping, instead of warping
#    four times?
