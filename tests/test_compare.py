"""``superres run --compare``: one frame upscaled beside the merged result."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from superres_gpu import cli
from superres_gpu.api import superresolve
from superres_gpu.compare import (comparison_picture, crop_size, detail_crops, display8, image_crops,
                                  lanczos_crops)
from superres_gpu.synth import recipe_burst


def test_detail_crops_find_the_textured_places_apart_and_inside():
    rng = np.random.default_rng(0)
    h, w = 300, 400
    luma = 0.5 + rng.normal(0, 0.01, (h, w)).astype(np.float32)  # noise alone: little detail
    luma[40:120, 250:330] += (rng.random((80, 80)) > 0.5) * 0.4  # the most detailed place
    luma[200:260, 60:120] += (rng.random((60, 60)) > 0.5) * 0.2  # the next
    crops = detail_crops(luma, 2.0)
    assert 1 <= len(crops) <= 3
    size = crop_size(800, 600)
    for x, y, s in crops:
        assert s == size and 0 <= x <= 800 - s and 0 <= y <= 600 - s
    (x0, y0, s), (x1, y1, _) = crops[:2]
    centre = lambda x, y: ((x + s / 2.0 + 0.5) / 2.0 - 0.5, (y + s / 2.0 + 0.5) / 2.0 - 0.5)  # noqa: E731
    cx, cy = centre(x0, y0)
    assert 250 <= cx <= 330 and 40 <= cy <= 120, crops
    cx, cy = centre(x1, y1)
    assert 60 - s / 4 <= cx <= 120 + s / 4 and 200 - s / 4 <= cy <= 260 + s / 4, crops
    for a in range(len(crops)):  # no two crops overlap
        for b in range(a):
            ax, ay, _ = crops[a]
            bx, by, _ = crops[b]
            assert max(abs(ax - bx), abs(ay - by)) >= s


def test_detail_crops_on_small_frames():
    luma = np.random.default_rng(1).random((20, 30)).astype(np.float32)
    crops = detail_crops(luma, 1.0)
    assert crops and all(0 <= x <= 30 - s and 0 <= y <= 20 - s and s >= 1 for x, y, s in crops)


def test_lanczos_crops_lie_on_the_output_grid():
    """At 2x the crops are OpenCV's Lanczos resize of the whole frame, cropped
    (the same pixel-centre convention as the merge's output grid)."""
    rng = np.random.default_rng(2)
    frame = (cv2.GaussianBlur(rng.random((60, 80, 3)).astype(np.float32), (0, 0), 1.2) * 255).astype(np.uint8)
    up = cv2.resize(frame, (160, 120), interpolation=cv2.INTER_LANCZOS4)
    crops = [(30, 20, 40), (101, 57, 33)]
    for (x, y, s), c in zip(crops, lanczos_crops(frame, 2.0, crops)):
        assert c.shape == (s, s, 3) and c.dtype == np.uint8
        assert np.abs(c.astype(int) - up[y : y + s, x : x + s]).max() <= 2


@pytest.mark.parametrize("scale", [1.5, 3.0])
def test_lanczos_crops_follow_the_grid_at_any_scale(scale):
    """Output pixel X samples the frame at x = (X + 0.5) / scale - 0.5: a
    linear ramp, which Lanczos reproduces, reads that position back."""
    h, w = 40, 60
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frame = np.clip(np.rint(100 + 2.0 * xx + 1.0 * yy), 0, 65535).astype(np.uint16)
    x0, y0, s = 20, 17, 30
    (c,) = lanczos_crops(frame, scale, [(x0, y0, s)])
    X, Y = np.meshgrid(np.arange(x0, x0 + s), np.arange(y0, y0 + s))
    want = 100 + 2.0 * ((X + 0.5) / scale - 0.5) + 1.0 * ((Y + 0.5) / scale - 0.5)
    assert np.abs(c.astype(float) - want).max() <= 0.6  # cv2.remap's 1/32 px positions, rounding


def test_detail_crops_never_overlap():
    rng = np.random.default_rng(4)
    for shape, scale in (((12, 40), 3.0), ((30, 31), 2.5), ((64, 48), 1.0), ((200, 150), 2.0)):
        crops = detail_crops(rng.random(shape).astype(np.float32), scale)
        for a in range(len(crops)):
            for b in range(a):
                (ax, ay, s), (bx, by, _) = crops[a], crops[b]
                assert max(abs(ax - bx), abs(ay - by)) >= s, (shape, scale, crops)


def test_display8():
    assert display8(np.full((2, 2), 65535, np.uint16)).tolist() == [[[255] * 3] * 2] * 2
    f = display8(np.array([[[0.5, np.nan, 2.0]]], np.float32))
    assert f.tolist() == [[[128, 0, 255]]]
    assert display8(np.array([[0.5]], np.float32), linear=True)[0, 0, 0] == 188  # sRGB of linear 0.5
    assert display8(np.array([[200]], np.uint8))[0, 0].tolist() == [200, 200, 200]


def test_comparison_picture_places_both_columns():
    rng = np.random.default_rng(3)
    result = (rng.random((200, 300, 3)) * 65535).astype(np.uint16)
    crops = [(10, 20, 64), (150, 100, 64)]
    singles = [np.full((64, 64, 3), 7, np.uint8)] * 2
    pic = comparison_picture(result, crops, singles, image_crops(result, crops), "one frame", "merged", "title")
    assert pic.dtype == np.uint8 and pic.ndim == 3
    zoom = 4  # 64 px crops are enlarged to at least 240 px
    assert pic.shape[1] == 2 * 64 * zoom + 8
    # the last row: the single frame's crop on the left, the result's on the right, enlarged
    y = pic.shape[0] - 8 - 64 * zoom
    assert (pic[y : y + 64 * zoom, : 64 * zoom] == 7).all()
    want = cv2.resize(display8(result[100:164, 150:214]), (64 * zoom, 64 * zoom), interpolation=cv2.INTER_NEAREST)
    assert (pic[y : y + 64 * zoom, 64 * zoom + 8 :] == want).all()


def test_run_writes_the_comparison(tmp_path):
    burst = recipe_burst("test-small", frames=6, seed=3)
    png = tmp_path / "c.png"
    image, report = superresolve(burst.frames, 2.0, backend="numpy", compare_png=png, warn=lambda m: None)
    pic = cv2.imread(str(png))[..., ::-1]
    crops = report["comparison"]["crops"]
    assert report["comparison"]["path"] == str(png) and 1 <= len(crops) <= 3
    x, y, s = crops[-1]
    zoom = max(1, int(np.ceil(240 / s)))
    tile = s * zoom
    top = pic.shape[0] - 8 - tile
    right = pic[top : top + tile, tile + 8 : 2 * tile + 8]
    want = cv2.resize(display8(image[y : y + s, x : x + s]), (tile, tile), interpolation=cv2.INTER_NEAREST)
    assert (right == want).all()
    # the left column shows the same place: it matches the result there better than one crop's side away
    left = pic[top : top + tile : zoom, :tile : zoom].astype(float)
    here = np.abs(left - display8(image[y : y + s, x : x + s])).mean()
    h, w = image.shape[:2]
    ox = x + s if x + 2 * s <= w else x - s
    away = np.abs(left - display8(image[y : y + s, ox : ox + s])).mean()
    assert here < 0.5 * away, (here, away)


def test_cli_compare(tmp_path, capsys):
    burst = recipe_burst("test-small", frames=4, seed=5)
    burst.write(tmp_path / "b")
    out, png, rep = tmp_path / "o.tif", tmp_path / "c.png", tmp_path / "r.json"
    args = ["run", str(tmp_path / "b"), "-o", str(out), "--compare", str(png), "--report", str(rep),
            "--backend", "numpy", "--no-sharpen"]
    assert cli.main(args) == 0
    assert "comparison" in capsys.readouterr().out
    assert cv2.imread(str(png)) is not None
    assert json.loads(rep.read_text())["comparison"]["path"] == str(png)
    before = png.read_bytes()
    assert cli.main(args) == 1  # it exists: nothing is replaced without --overwrite
    assert "already exists" in capsys.readouterr().err and png.read_bytes() == before
    assert cli.main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("name", ["c.jpg", "c"])
def test_cli_compare_needs_a_png_name(tmp_path, capsys, name):
    burst = recipe_burst("test-small", frames=3, seed=5)
    burst.write(tmp_path / "b")
    assert cli.main(["run", str(tmp_path / "b"), "-o", str(tmp_path / "o.tif"), "--compare",
                     str(tmp_path / name), "-q"]) == 1
    err = capsys.readouterr().err
    assert "--compare" in err and ".png" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.tif").exists()
