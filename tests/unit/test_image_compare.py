"""c2cwsgiutils.acceptance.image: screenshots compared with an expected PNG, the images made with numpy."""

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from c2cwsgiutils.acceptance.image import (
    MAX_PIXELS,
    check_image,
    check_image_file,
    normalize_image,
    similarity,
)

Pixels = npt.NDArray[np.uint8]


def page(height: int = 60, width: int = 80) -> Pixels:
    """A white page with a dark box and a grey stripe, as a screenshot of a simple page looks."""
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    image[10:30, 10:40] = (20, 40, 160)
    image[40:44, :] = (128, 128, 128)
    return image


def save(path: Path, image: npt.NDArray[np.uint8], mode: str = "RGB") -> Path:
    Image.fromarray(image, mode=mode).save(path, format="PNG")
    return path


def read(path: Path) -> Pixels:
    with Image.open(path) as opened:
        return np.asarray(opened.convert("RGB"))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def expected(tmp_path: Path) -> Path:
    return save(tmp_path / "page.expected.png", page())


def test_identical_images_pass_and_write_nothing(results: Path, expected: Path) -> None:
    check_image(results, page(), expected)
    assert list(results.iterdir()) == []


def test_a_difference_within_the_level_passes(results: Path, expected: Path) -> None:
    actual = page()
    actual[50:54, 60:64] = (250, 250, 250)  # a few nearly white pixels on white
    score, _ = similarity(page(), actual)
    assert 0.99 < score < 1.0
    check_image(results, actual, expected, level=0.99)
    assert list(results.iterdir()) == []


def test_a_difference_above_the_level_fails_and_writes_the_actual_and_diff(
    results: Path, expected: Path
) -> None:
    actual = page()
    actual[10:30, 10:40] = (200, 30, 30)  # the box changed colour
    with pytest.raises(AssertionError) as failure:
        check_image(results, actual, expected, level=0.95)
    actual_file, diff_file = results / "page.actual-masked.png", results / "page.diff.png"
    assert str(actual_file) in str(failure.value)
    assert str(diff_file) in str(failure.value)
    assert "< level 0.95" in str(failure.value)
    assert np.array_equal(read(actual_file), actual)
    diff = read(diff_file)
    assert diff[20, 25].max() > 100  # bright where the images differ
    assert diff[55, 75].max() == 0  # black where they agree


def test_the_default_level_fails_on_any_difference(results: Path, expected: Path) -> None:
    actual = page()
    actual[0, 0] = (254, 255, 255)
    with pytest.raises(AssertionError, match=r"similarity 0\.99"):
        check_image(results, actual, expected)


def test_the_mask_hides_its_black_region(tmp_path: Path, results: Path, expected: Path) -> None:
    actual = page()
    actual[10:30, 10:40] = (200, 30, 30)
    mask = np.full((60, 80), 255, dtype=np.uint8)
    mask[5:35, 5:45] = 0
    save(tmp_path / "page.mask.png", mask, mode="L")
    check_image(results, actual, expected)
    assert list(results.iterdir()) == []
    with pytest.raises(AssertionError, match="similarity"):
        check_image(results, actual, expected, use_mask=False)


def test_the_mask_outside_its_black_region_still_compares(
    tmp_path: Path, results: Path, expected: Path
) -> None:
    actual = page()
    actual[40:44, :] = (0, 0, 0)  # the stripe changed, outside the masked box
    mask = np.full((60, 80), 255, dtype=np.uint8)
    mask[5:35, 5:45] = 0
    save(tmp_path / "page.mask.png", mask, mode="L")
    with pytest.raises(AssertionError, match="similarity"):
        check_image(results, actual, expected, level=0.99)
    masked = read(results / "page.actual-masked.png")
    assert (masked[5:35, 5:45] == 255).all()  # painted with the most frequent colour: the page's white


def test_a_mask_with_grey_is_refused(tmp_path: Path, results: Path, expected: Path) -> None:
    save(tmp_path / "page.mask.png", np.full((60, 80), 128, dtype=np.uint8), mode="L")
    with pytest.raises(AssertionError, match="other colours than black and white"):
        check_image(results, page(), expected)


def test_a_mask_of_another_size_is_refused(tmp_path: Path, results: Path, expected: Path) -> None:
    save(tmp_path / "page.mask.png", np.full((30, 80), 255, dtype=np.uint8), mode="L")
    with pytest.raises(AssertionError, match="is 80x30, the image 80x60"):
        check_image(results, page(), expected)


def test_generate_expected_image_writes_the_expected_file(tmp_path: Path, results: Path) -> None:
    expected = tmp_path / "new.expected.png"
    check_image(results, page(), expected, generate_expected_image=True)
    assert np.array_equal(read(expected), page())
    check_image(results, page(), expected)


def test_a_missing_expected_file_is_written_and_fails(tmp_path: Path, results: Path) -> None:
    expected = tmp_path / "missing.expected.png"
    with pytest.raises(AssertionError, match="expected image not found"):
        check_image(results, page(), expected)
    assert np.array_equal(read(expected), page())


def test_check_image_file_reads_a_png_on_disk(tmp_path: Path, results: Path, expected: Path) -> None:
    check_image_file(results, save(tmp_path / "shot.png", page()), expected)
    changed = page()
    changed[10:30, 10:40] = 255
    with pytest.raises(AssertionError, match="similarity"):
        check_image_file(results, save(tmp_path / "shot.png", changed), expected)
    assert (results / "page.diff.png").is_file()


def test_an_opaque_rgba_image_matches_its_rgb_expected(results: Path, expected: Path) -> None:
    rgba = np.dstack([page(), np.full((60, 80), 255, dtype=np.uint8)])
    check_image(results, rgba, expected)


def test_transparency_is_blended_on_white(results: Path, expected: Path) -> None:
    rgba = np.dstack([page(), np.full((60, 80), 255, dtype=np.uint8)])
    rgba[10:30, 10:40, 3] = 0  # the box fully transparent: a white page shows through
    assert (normalize_image(rgba)[10:30, 10:40] == 255).all()
    half = np.zeros((8, 8, 4), dtype=np.uint8)
    half[..., 3] = 128  # black at half opacity on white: mid grey
    assert (normalize_image(half) == 127).all()


def test_an_rgba_png_on_disk_matches_its_rgb_expected(tmp_path: Path, results: Path, expected: Path) -> None:
    rgba = np.dstack([page(), np.full((60, 80), 255, dtype=np.uint8)])
    check_image_file(results, save(tmp_path / "shot.png", rgba, mode="RGBA"), expected)


def test_grey_and_float_images_are_normalized(results: Path, tmp_path: Path) -> None:
    grey = np.zeros((10, 12), dtype=np.uint8)
    grey[2:5, 3:9] = 200
    assert np.array_equal(normalize_image(grey), np.dstack([grey] * 3))
    assert np.array_equal(normalize_image(grey / 255.0), np.dstack([grey] * 3))
    expected = save(tmp_path / "grey.expected.png", grey, mode="L")
    check_image(results, grey.astype(np.float32) / 255.0, expected)


def test_the_callers_array_is_not_changed(tmp_path: Path, results: Path, expected: Path) -> None:
    mask = np.full((60, 80), 255, dtype=np.uint8)
    mask[5:35, 5:45] = 0
    save(tmp_path / "page.mask.png", mask, mode="L")
    actual = page()
    check_image(results, actual, expected)
    assert np.array_equal(actual, page())


def test_a_size_mismatch_fails_clearly(results: Path, expected: Path) -> None:
    with pytest.raises(AssertionError, match=r"different sizes: expected 80x60 .* actual 80x50"):
        check_image(results, page(height=50), expected)
    assert (results / "page.actual-masked.png").is_file()


def test_level_out_of_range_is_refused(results: Path, expected: Path) -> None:
    with pytest.raises(ValueError, match=r"from 0\.0 to 1\.0"):
        check_image(results, page(), expected, level=1.5)


def test_bad_shapes_and_sizes_are_refused(results: Path, expected: Path) -> None:
    with pytest.raises(ValueError, match="not \\(60, 80, 5\\)"):
        normalize_image(np.zeros((60, 80, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="at least 7x7"):
        normalize_image(np.zeros((5, 80, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=f"more than {MAX_PIXELS} pixels"):
        normalize_image(np.broadcast_to(np.uint8(0), (MAX_PIXELS // 1000 + 1, 1000, 3)))
    with pytest.raises(ValueError, match="int32"):
        normalize_image(np.zeros((8, 8, 3), dtype=np.int32))


def test_similarity_of_flat_images_is_the_luminance_term() -> None:
    # No variance in the window: SSIM is (2xy + C1) / (x² + y² + C1), C1 = (0.01 * 255)².
    c1 = (0.01 * 255) ** 2
    score, ssim_map = similarity(np.full((9, 9, 3), 100, np.uint8), np.full((9, 9, 3), 110, np.uint8))
    assert score == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), rel=1e-12)
    assert ssim_map.shape == (9, 9, 3)


def test_similarity_sees_structure_not_only_brightness() -> None:
    stripes = np.zeros((16, 16, 3), dtype=np.uint8)
    stripes[::2] = 255
    inverted = 255 - stripes  # the same mean brightness, the opposite structure
    assert similarity(stripes, inverted)[0] < 0
    assert similarity(stripes, stripes)[0] == 1.0
