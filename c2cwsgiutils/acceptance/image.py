"""Compare a screenshot with an expected PNG, within a similarity level, for acceptance tests.

``check_image`` takes a decoded image (a numpy array), ``check_image_file`` a PNG on disk. The
score is the structural similarity (SSIM: 7x7 uniform windows, K1=0.01, K2=0.03, the mean over the
colour channels), the measure c2cwsgiutils 6.1 used through scikit-image, so the ``level`` of a
suite written for it keeps its meaning; here it is computed with numpy alone, which spares the
suite scipy. On a failure the actual image and a diff image are written to ``result_folder`` and
named in the ``AssertionError``.

Needs the ``test-images`` extra (Pillow and numpy). The buildah helpers that lived here before are
in :mod:`c2cwsgiutils.acceptance.container_image`.
"""

from os import PathLike
from pathlib import Path
from typing import Any, TypeAlias

from c2cwsgiutils import extras

_FEATURE = "c2cwsgiutils.acceptance.image (check_image)"
extras.require("numpy", "test-images", _FEATURE)
extras.require("PIL.Image", "test-images", _FEATURE)

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from PIL import Image  # noqa: E402

__all__ = ["MAX_PIXELS", "check_image", "check_image_file", "normalize_image", "similarity"]

Pixels: TypeAlias = npt.NDArray[np.uint8]
"""An image as compared: height x width x 3 (RGB), one byte a channel."""
NpNdarrayInt: TypeAlias = Pixels
"""Upstream 6.1's name of :data:`Pixels`."""
StrPath: TypeAlias = str | PathLike[str]

MAX_PIXELS = 16 * 1024 * 1024
"""The largest image compared (16 Mpx, a 5K screen); the comparison holds about 100 bytes a pixel."""
_WINDOW = 7  # the side of the SSIM window, as scikit-image's default
_K1, _K2, _DATA_RANGE = 0.01, 0.03, 255.0
_WHITE = 255.0


def _check_size(height: int, width: int, what: str) -> None:
    """Refuse images too small for the SSIM window or too large for a test machine's memory."""
    if height < _WINDOW or width < _WINDOW:
        raise ValueError(f"{what} is {width}x{height}: at least {_WINDOW}x{_WINDOW} pixels are needed")
    if height * width > MAX_PIXELS:
        raise ValueError(f"{what} is {width}x{height}: more than {MAX_PIXELS} pixels")


def normalize_image(image: npt.NDArray[Any]) -> Pixels:
    """Return ``image`` as RGB bytes: grey is spread to 3 channels, alpha is blended on white.

    Accepts height x width (grey), or x 1, 2 (grey, alpha), 3 (RGB) or 4 (RGBA) channels, of
    bytes, 16-bit integers, booleans or floats in [0, 1]. Always a new array: the caller's is
    never changed.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"an image is height x width [x 1, 2, 3 or 4 channels], not {array.shape}")
    _check_size(array.shape[0], array.shape[1], "the image")
    if array.dtype == np.uint8:
        values = array.astype(np.float64)
    elif array.dtype == np.uint16:
        values = array * (255.0 / 65535.0)
    elif array.dtype == np.bool_:
        values = array * 255.0
    elif np.issubdtype(array.dtype, np.floating):
        values = np.clip(array, 0.0, 1.0) * 255.0
    else:
        raise ValueError(f"image values of type {array.dtype} are not supported (uint8, uint16, bool, float)")
    channels = values.shape[2]
    if channels in (2, 4):  # the last channel is alpha: what shows through is a white page
        alpha = values[..., -1:] / 255.0
        values = values[..., :-1] * alpha + _WHITE * (1.0 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return np.rint(values).astype(np.uint8)


def _read_png(filename: StrPath, what: str) -> Pixels:
    """Decode an image file (PNG, or anything Pillow reads) into RGB bytes."""
    with Image.open(filename) as opened:
        width, height = opened.size
        _check_size(height, width, f"{what} {filename}")
        has_alpha = opened.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in opened.info
        decoded = opened.convert("RGBA" if has_alpha else "RGB")
    return normalize_image(np.asarray(decoded))


def _write_png(filename: Path, image: Pixels) -> None:
    Image.fromarray(image, mode="RGB").save(filename, format="PNG")


def _read_mask(filename: Path, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Return where the mask is black (the pixels to ignore); a mask holds only black and white.

    Alpha is blended on white, colours are turned to grey (ITU-R 601 luma, Pillow's ``"L"``).
    """
    colour = _read_png(filename, "the mask")
    grey = np.asarray(Image.fromarray(colour, mode="RGB").convert("L"))
    if grey.shape != shape[:2]:
        raise AssertionError(
            f"the mask {filename} is {grey.shape[1]}x{grey.shape[0]}, the image {shape[1]}x{shape[0]}"
        )
    if np.any((grey != 0) & (grey != 255)):
        raise AssertionError(f"the mask {filename} holds other colours than black and white")
    return np.asarray(grey == 0)


def _background(image: Pixels) -> Pixels:
    """Return the most frequent value of each channel: what a masked region is painted with."""
    return np.array(
        [np.bincount(image[..., channel].ravel(), minlength=256).argmax() for channel in range(3)],
        dtype=np.uint8,
    )


def _box_mean(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the mean over the window around each pixel, the border mirrored (scipy's "reflect")."""
    half = _WINDOW // 2
    height, width = values.shape
    padded = np.pad(values, half, mode="symmetric")
    rows = padded[:height].copy()
    for offset in range(1, _WINDOW):
        rows += padded[offset : offset + height]
    total = rows[:, :width].copy()
    for offset in range(1, _WINDOW):
        total += rows[:, offset : offset + width]
    return total / (_WINDOW * _WINDOW)


def similarity(expected: Pixels, actual: Pixels) -> tuple[float, npt.NDArray[np.float64]]:
    """Return the structural similarity of two RGB images (1.0: the same) and its map per pixel.

    The score is the mean of the map without the border half a window wide, averaged over the
    channels, as scikit-image's ``structural_similarity(..., channel_axis=2)`` computes it.
    """
    if expected.shape != actual.shape:
        raise ValueError(f"images of different shapes: {expected.shape} != {actual.shape}")
    samples = _WINDOW * _WINDOW
    covariance_norm = samples / (samples - 1.0)  # the sample covariance, as scikit-image's default
    c1 = (_K1 * _DATA_RANGE) ** 2
    c2 = (_K2 * _DATA_RANGE) ** 2
    half = _WINDOW // 2
    maps = []
    scores = []
    for channel in range(expected.shape[2]):
        x = expected[..., channel].astype(np.float64)
        y = actual[..., channel].astype(np.float64)
        mean_x, mean_y = _box_mean(x), _box_mean(y)
        var_x = covariance_norm * (_box_mean(x * x) - mean_x * mean_x)
        var_y = covariance_norm * (_box_mean(y * y) - mean_y * mean_y)
        cov_xy = covariance_norm * (_box_mean(x * y) - mean_x * mean_y)
        numerator = (2.0 * mean_x * mean_y + c1) * (2.0 * cov_xy + c2)
        denominator = (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
        ssim_map = numerator / denominator
        maps.append(ssim_map)
        scores.append(float(ssim_map[half:-half, half:-half].mean()))
    return float(np.mean(scores)), np.stack(maps, axis=-1)


def _names(expected_filename: Path, result_folder: Path) -> tuple[Path | None, Path, Path]:
    """Return the mask beside ``NAME.expected.png`` (if so named), and the actual and diff paths."""
    stem = expected_filename.stem
    mask = None
    if stem.endswith(".expected"):
        stem = stem.removesuffix(".expected")
        mask = expected_filename.with_name(f"{stem}.mask.png")
    return mask, result_folder / f"{stem}.actual-masked.png", result_folder / f"{stem}.diff.png"


def check_image(  # noqa: PLR0917 (upstream's positional order, which suites use)
    result_folder: StrPath,
    image_to_check: npt.NDArray[Any],
    expected_filename: StrPath,
    level: float = 1.0,
    generate_expected_image: bool = False,
    use_mask: bool = True,
) -> None:
    """Assert that ``image_to_check`` looks like the PNG ``expected_filename``.

    ``level`` is the least structural similarity accepted, from 0.0 to 1.0 (1.0: identical). For
    ``NAME.expected.png``, a ``NAME.mask.png`` beside it (black and white, the image's size) hides
    its black pixels in both images (painted with the actual image's most frequent colour), unless
    ``use_mask=False``. On a failure ``result_folder`` receives ``NAME.actual-masked.png`` and
    ``NAME.diff.png`` (black where the images agree). ``generate_expected_image=True`` writes the
    expected file from this image instead of checking; a missing expected file is written too, and
    the check fails so that it is looked at before it is committed.
    """
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"level is a similarity from 0.0 to 1.0, not {level}")
    expected_path = Path(expected_filename)
    results = Path(result_folder)
    mask_path, actual_path, diff_path = _names(expected_path, results)
    actual = normalize_image(image_to_check)
    mask = None
    background = _background(actual)
    if use_mask and mask_path is not None and mask_path.is_file():
        mask = _read_mask(mask_path, actual.shape)
        actual[mask] = background
    results.mkdir(parents=True, exist_ok=True)
    if generate_expected_image:
        _write_png(expected_path, actual)
        return
    if not expected_path.is_file():
        _write_png(expected_path, actual)
        raise AssertionError(f"expected image not found: {expected_path}; written from this one, look at it")
    expected = _read_png(expected_path, "the expected image")
    if expected.shape != actual.shape:
        _write_png(actual_path, actual)
        raise AssertionError(
            f"images have different sizes: expected {expected.shape[1]}x{expected.shape[0]} "
            f"({expected_path}) != actual {actual.shape[1]}x{actual.shape[0]} ({actual_path})"
        )
    if mask is not None:
        expected[mask] = background
    if np.array_equal(expected, actual):
        return
    score, ssim_map = similarity(expected, actual)
    if score >= level:
        return
    _write_png(actual_path, actual)
    _write_png(diff_path, np.clip(np.rint(255.0 - ssim_map * 255.0), 0, 255).astype(np.uint8))
    raise AssertionError(
        f"{actual_path} != {expected_path}: similarity {score} < level {level} (diff: {diff_path})"
    )


def check_image_file(  # noqa: PLR0917 (upstream's positional order)
    result_folder: StrPath,
    image_filename_to_check: StrPath,
    expected_filename: StrPath,
    level: float = 1.0,
    generate_expected_image: bool = False,
    use_mask: bool = True,
) -> None:
    """Assert that the image file ``image_filename_to_check`` looks like ``expected_filename``.

    The file is decoded with Pillow, then checked by :func:`check_image` (same arguments).
    """
    check_image(
        result_folder,
        _read_png(image_filename_to_check, "the image"),
        expected_filename,
        level,
        generate_expected_image,
        use_mask,
    )
