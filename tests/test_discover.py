"""Discovery and probing: which files make the burst, and what their headers say."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.discover import FrameInfo, check_burst, list_inputs, probe, resolve_frames
from superres_gpu.errors import InputError, SuperresError
from superres_gpu.output import AtomicOutput, write_png, write_tiff
from exif_util import write_image as _write


def test_list_inputs_skips_marked_mask_hidden_and_own_outputs(tmp_path, rng):
    img = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    for name in ("b.jpg", "a.png", "c.JPG", "mask.png", ".hidden.jpg", "x.jpg.not_sharp_enough", "notes.txt"):
        p = tmp_path / name
        if name.endswith(".txt"):
            p.write_text("hi")
        else:
            _write(p, img) if not name.endswith("not_sharp_enough") else p.write_bytes(b"x")
    write_png(tmp_path / "weights.png", img)
    out = AtomicOutput(tmp_path / "result.tif")
    write_tiff(out, np.zeros((8, 8, 3), np.uint16))
    out.commit()
    names = [p.name for p in list_inputs([tmp_path])]
    assert names == ["a.png", "b.jpg", "c.JPG"]


def test_list_inputs_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list_inputs([tmp_path / "missing"])
    (tmp_path / "x.jpg.not_sharp_enough").write_bytes(b"x")
    with pytest.raises(InputError, match="not_sharp_enough"):
        list_inputs([tmp_path / "x.jpg.not_sharp_enough"])


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"hello, I am not an image" * 10, "not a JPEG, PNG, TIFF or HEIF"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40, "corrupt JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, "corrupt PNG"),
    ],
)
def test_probe_rejects_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as e:
        probe(p)
    assert isinstance(e.value, SuperresError) and isinstance(e.value, ValueError)
    assert str(p) in str(e.value)


def test_resolve_frames_puts_a_named_reference_first(tmp_path, rng):
    img = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    for name in ("a.png", "b.png", "c.png"):
        _write(tmp_path / name, img)
    frames, i = resolve_frames([tmp_path], "first")
    assert [p.name for p in frames] == ["a.png", "b.png", "c.png"] and i == 0
    frames, i = resolve_frames([tmp_path], str(tmp_path / "b.png"))
    assert frames[i].name == "b.png" and len(frames) == 3
    other = tmp_path / "elsewhere"
    other.mkdir()
    _write(other / "r.png", img)
    frames, i = resolve_frames([tmp_path], str(other / "r.png"))
    assert i == 0 and frames[0].name == "r.png" and len(frames) == 4
    with pytest.raises(InputError, match="reference frame not found"):
        resolve_frames([tmp_path], str(tmp_path / "missing.png"))


def test_check_burst_names_the_odd_frame(tmp_path):
    ref = FrameInfo(tmp_path / "a.jpg", "jpeg", 40, 30, 3, 8)
    odd = FrameInfo(tmp_path / "b.jpg", "jpeg", 30, 40, 3, 8)
    grey = FrameInfo(tmp_path / "c.png", "png", 40, 30, 1, 16)
    check_burst([ref, ref], ref)
    with pytest.raises(InputError, match="30x40 but the reference a.jpg is 40x30") as e:
        check_burst([ref, odd], ref)
    assert "b.jpg" in str(e.value)
    with pytest.raises(InputError, match="16-bit grey"):
        check_burst([ref, grey], ref)
    assert ref.max_value == 255.0 and grey.max_value == 65535.0 and grey.shape == (30, 40)
