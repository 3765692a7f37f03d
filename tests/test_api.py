"""The Python API: superres_gpu.superresolve on paths and arrays."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

import superres_gpu
from superres_gpu import api
from superres_gpu.errors import InputError


def test_arrays_and_files_give_the_same_image(tmp_path, burst_dir, small_burst):
    from_files, rep_files = superres_gpu.superresolve(burst_dir, backend="numpy")
    from_arrays, rep_arrays = superres_gpu.superresolve(np.stack(small_burst.frames), backend="numpy")
    np.testing.assert_array_equal(from_files, from_arrays)
    assert rep_arrays["frames"][0]["path"] == "array[0]"
    assert [f["used"] for f in rep_files["frames"]] == [f["used"] for f in rep_arrays["frames"]]
    assert list(tmp_path.iterdir()) == [burst_dir]  # nothing written without output=


def test_output_and_report_written_when_asked(tmp_path, small_burst):
    out = tmp_path / "r.tif"
    image, report = superres_gpu.superresolve(list(small_burst.frames), output=out, report=tmp_path / "r.json",
                                              backend="numpy")
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(out), image)
    assert report["output"] == str(out) and (tmp_path / "r.json").is_file()


def test_float_arrays_are_quantised_and_bad_arrays_are_refused(small_burst):
    frames = [f.astype(np.float32) / 255.0 for f in small_burst.frames]
    image, report = superres_gpu.superresolve(frames, scale=1.5, backend="numpy")
    assert image.dtype == np.uint16 and image.shape == (180, 240, 3)
    assert report["bits_in"] == 16
    with pytest.raises(InputError, match=r"array\[1\].*outside \[0, 1\]"):
        superres_gpu.superresolve([frames[0], frames[1] * 2], backend="numpy")
    with pytest.raises(InputError, match="dtype int32"):
        superres_gpu.superresolve([f.astype(np.int32) for f in small_burst.frames], backend="numpy")
    with pytest.raises(InputError, match="shape"):
        superres_gpu.superresolve(np.zeros((3, 4, 4, 5), np.uint8), backend="numpy")
    with pytest.raises(InputError, match="same size"):
        superres_gpu.superresolve([small_burst.frames[0], small_burst.frames[1][:-2]], backend="numpy")


def test_arrays_are_not_modified(small_burst):
    frames = [f.copy() for f in small_burst.frames]
    superres_gpu.superresolve(frames, backend="numpy")
    for a, b in zip(frames, small_burst.frames):
        np.testing.assert_array_equal(a, b)


def test_docstring_example_runs():
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_the_api_is_exported_lazily():
    code = ("import sys, superres_gpu; heavy = [m for m in ('cv2', 'cupy', 'rich', 'superres_gpu.pipeline') "
            "if m in sys.modules]; f = superres_gpu.superresolve; print(heavy, callable(f))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"


def test_the_api_default_merge_is_the_pipelines():
    import inspect

    from superres_gpu import superresolve
    from superres_gpu.options import DEFAULT_MERGE, PipelineConfig

    assert inspect.signature(superresolve).parameters["merge"].default == DEFAULT_MERGE
    assert PipelineConfig(inputs=[], output="o.tif").merge == DEFAULT_MERGE


def test_arrays_take_the_chroma_subsampling_of_their_files(burst_dir, small_burst):
    """Decoded 4:2:0 JPEG frames as arrays, with chroma_subsampling=(2, 2), are
    corrected for chromatic aberration exactly as their files are; without it
    they are taken as full-chroma frames (whole channels moved)."""
    files, rep_files = superres_gpu.superresolve(burst_dir, backend="numpy", tca="on", sharpen="off")
    assert rep_files["tca"]["estimate"]["chroma_subsampling"] == [2, 2]
    arrays, rep_arrays = superres_gpu.superresolve(small_burst.frames, backend="numpy", tca="on", sharpen="off",
                                                   chroma_subsampling=(2, 2))
    np.testing.assert_array_equal(files, arrays)
    assert rep_arrays["tca"]["estimate"]["correction"] == "chroma band"
    _, rep_full = superres_gpu.superresolve(small_burst.frames, backend="numpy", tca="on", sharpen="off")
    assert rep_full["tca"]["estimate"]["correction"] == "channels"
    for bad in ((0, 2), (2,), "22", (2.5, 2), None.__class__, (float("inf"), 2), (True, True), (float("nan"), 1)):
        with pytest.raises(InputError, match="chroma_subsampling"):
            superres_gpu.superresolve(small_burst.frames, backend="numpy", chroma_subsampling=bad)
    with pytest.raises(InputError, match="chroma_subsampling is for arrays"):
        superres_gpu.superresolve(burst_dir, backend="numpy", chroma_subsampling=(2, 2))


@pytest.mark.parametrize("option,value,message", [
    ("refine", "yes", "refine must be True or False"), ("cull", 1, "cull must be True or False"),
    ("tca", "maybe", "--tca value"), ("kernel_shape", "square", "kernel shape"),
])
def test_bad_option_values_are_refused_before_any_work(small_burst, option, value, message):
    from superres_gpu.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        superres_gpu.superresolve(small_burst.frames, backend="numpy", **{option: value})


@pytest.mark.parametrize("frames, message", [
    ([np.zeros((64, 64, 3), np.uint8)], r"array\[0\]: only one frame given"),
    (np.zeros((1, 64, 64), np.uint8), r"array\[0\]: only one frame given"),
    (np.zeros((64, 64, 3), np.uint8), r"array: an array of shape \(64, 64, 3\) is one frame; a burst needs"),
    (np.zeros((64, 64), np.uint16), r"array: an array of shape \(64, 64\) is one frame; a burst needs"),
])
def test_a_single_array_frame_is_refused_as_one_frame(frames, message):
    with pytest.raises(InputError, match=message):
        api.superresolve(frames)
