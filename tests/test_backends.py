"""Inference backends (``realtime/backends``): parity with fp32 eager on real crops for every
trained model in assets/ and every backend present (skipped with the reason where absent), names
and errors, ``auto`` and its cache, the compile fallback and the missing torch-tensorrt message."""
from __future__ import annotations

import json
import sys
from importlib.util import find_spec

import cv2
import numpy as np
import pytest
import torch

from realtime.core.assets import DEMO_CLIP, LANDMARKS_68, SYNTH_5, asset_dir
from realtime.backends import (
    BACKENDS, PARITY_TOLERANCE_PX, REDUCED_PRECISION, Backend, available_backends, bucket, make_backend,
)
from realtime.backends import auto, base, exported, quantized, registry
from realtime.backends.base import Decoded, bucketed
from realtime.geometry.crops import crop_matrix
from realtime.core.errors import UserError
from realtime.stages.landmarker import Landmarker
from realtime.models.presets import make_config
from realtime.models.model import build_model
from realtime.models.weights import load_model, read_metadata

torch.set_num_threads(1)
cv2.setNumThreads(1)
TRAINED = [p for p in sorted(asset_dir().glob("*.safetensors")) if read_metadata(p).get("kind") == "landmark"]
WEIGHTS = SYNTH_5
# bf16 rounds every activation to 8 significant bits: 0.17-0.36 px on the trained models here, so
# these are held to a looser bound (and ``auto``, at 0.1 px, does not pick them).
REDUCED_TOLERANCE_PX = 0.6
# int8 (activations in 256 levels) moves single landmarks by 1-4 px on the bundled real-face model
# while its NME stays within 0.15 points, so int8 is held to the mean shift; the synthetic-face
# MTFL model sees these real crops out of its domain (flat heat maps) and moves more.
INT8 = ("onnxruntime_int8", "openvino_int8")
INT8_MEAN_TOLERANCE_PX = {"rcn68_faces": 0.5, "rcn68_fast": 0.5, "rcn68_dense": 0.5, "rcn68_teacher": 0.5, "rcn_mtfl_synth": 3.0}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """One scratch cache for the module: each model is exported to ONNX once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RCN_CACHE", str(tmp_path_factory.mktemp("rcn_cache")))
        yield


def clip_crops(grey: bool, every: int = 30) -> np.ndarray:
    """(N, 80, 80, C) uint8 crops of the bundled clip's frames 0, every, ... (plus jittered copies);
    the int8 backends calibrate on other frames (5, 15, ...)."""
    return quantized.clip_crops(80, grey, every)


def to_input(crops: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float().div(255.0)


def skip_unless_present(name: str, device: str) -> None:
    reason = available_backends(device)[name]
    if reason is not None:
        pytest.skip(f"{name} on {device}: {reason}")


def deviation_px(points: torch.Tensor, reference: torch.Tensor) -> float:
    return float((points.float().cpu() - reference.float().cpu()).norm(dim=-1).max())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", [n for n in BACKENDS if n != "eager"])
@pytest.mark.parametrize("weights", TRAINED, ids=[p.stem for p in TRAINED])
def test_parity_with_fp32_eager_on_real_crops(weights, name, device):
    skip_unless_present(name, device)
    model = load_model(weights, device)
    x = to_input(clip_crops(model.config.in_channels == 1), device)
    beta = model.config.beta
    ref_points, ref_scores = make_backend("eager", model, device, beta=beta)(x)
    backend = make_backend(name, model, device, beta=beta, batch_size=len(x))
    assert backend.name == name and "fell back" not in backend.note
    tolerance = REDUCED_TOLERANCE_PX if name in REDUCED_PRECISION else PARITY_TOLERANCE_PX
    sizes = (len(x),) if name == "compile" else (len(x), 5, 1)  # compile: one bucket (each costs ~20 s)
    for n in sizes:
        points, scores = backend(x[:n])
        assert points.shape == ref_points[:n].shape and scores.shape == ref_scores[:n].shape
        assert points.dtype == torch.float32 and scores.dtype == torch.float32
        if name in INT8:
            shift = float((points.float().cpu() - ref_points[:n].cpu()).norm(dim=-1).mean())
            limit = INT8_MEAN_TOLERANCE_PX[weights.stem]
            assert shift < limit, f"{name}: landmarks moved {shift:.2f} px on average (> {limit})"
            continue
        assert deviation_px(points, ref_points[:n]) < tolerance, f"{name}: landmarks moved beyond {tolerance} px"
        if name not in REDUCED_PRECISION:
            assert float((scores.cpu() - ref_scores[:n].cpu()).abs().max()) < 1e-3


def test_every_name_has_an_availability_and_eager_always_runs():
    cpu = available_backends("cpu")
    assert tuple(cpu) == BACKENDS and cpu["eager"] is None
    assert cpu["fp16"] and cpu["cudagraphs"] and cpu["tensorrt"]  # CUDA-only: a reason on the CPU
    if not torch.cuda.is_available():
        assert all(reason for reason in available_backends("cuda").values())


def test_unknown_and_unavailable_backends_are_one_line_user_errors():
    model = load_model(WEIGHTS)
    with pytest.raises(UserError, match="unknown backend 'warp'; choose auto or one of eager") as info:
        make_backend("warp", model)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="unknown backend"):
        Landmarker(WEIGHTS, backend="warp")
    with pytest.raises(UserError, match="'cudagraphs' cannot run on cpu here: needs CUDA"):
        make_backend("cudagraphs", model, "cpu")


def test_cli_unknown_backend_exits_2_with_one_error_line(tmp_path, capsys):
    pytest.importorskip("av")
    from realtime.video import main

    code = main([str(DEMO_CLIP), "-o", str(tmp_path / "o.mp4"), "--landmarks", str(tmp_path / "o.jsonl"),
                 "--backend", "warp"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: unknown backend 'warp'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(find_spec("torch_tensorrt") is not None, reason="torch-tensorrt is installed here")
def test_missing_torch_tensorrt_is_a_clear_message_not_a_crash():
    assert "torch_tensorrt" not in sys.modules  # importing the backends never tries it
    model = load_model(WEIGHTS)
    with pytest.raises(UserError, match="torch-tensorrt is not installed") as info:
        make_backend("tensorrt", model, "cpu")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="torch-tensorrt is not installed"):  # as on a CUDA machine without it
        exported.tensorrt(model, torch.device("cpu"), "softargmax", 1.0, 1)


@pytest.mark.parametrize("where", ["compile call", "first run"])
def test_compile_falls_back_to_eager_with_a_warning(monkeypatch, caplog, where):
    skip_unless_present("compile", "cpu")

    def broken_compile(module, **kwargs):
        if where == "compile call":
            raise RuntimeError("torch.compile is not supported here")

        def run(x):
            raise RuntimeError("inductor: C++ compile failed\nlong log")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = load_model(WEIGHTS)
    x = to_input(clip_crops(True, every=60), "cpu")
    with caplog.at_level("WARNING", logger="realtime.backends"):
        backend = make_backend("compile", model, "cpu", batch_size=4)
    assert backend.name == "compile" and backend.note.startswith("fell back to eager: RuntimeError")
    assert any("torch.compile failed" in r.message and "falling back to eager" in r.message for r in caplog.records)
    points, scores = backend(x)
    ref_points, ref_scores = make_backend("eager", model)(x)
    assert torch.equal(points, ref_points) and torch.equal(scores, ref_scores)


def test_auto_picks_a_present_backend_within_tolerance_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RCN_CACHE", str(tmp_path))
    model = load_model(WEIGHTS)
    backend = make_backend("auto", model, "cpu", batch_size=2)
    assert available_backends("cpu")[backend.name] is None
    decisions = list((tmp_path / "backends" / "auto").glob("*.json"))
    assert len(decisions) == 1
    record = json.loads(decisions[0].read_text())
    assert record["backend"] == backend.name and record["batch"] == 2 and "eager" in record["ms_per_batch"]
    assert record["deviation_px"][backend.name] <= PARITY_TOLERANCE_PX
    assert "compile" not in record["ms_per_batch"]  # too slow to build at each start: only by name

    def no_second_decision(*args, **kwargs):
        raise AssertionError("decided again despite the cached decision")

    monkeypatch.setattr(auto, "_decide", no_second_decision)
    assert make_backend("auto", model, "cpu", batch_size=2).name == backend.name  # bucket 2: cached


def test_auto_skips_backends_that_fail_to_build_or_move_landmarks(tmp_path, monkeypatch):
    monkeypatch.setenv("RCN_CACHE", str(tmp_path))
    model = load_model(WEIGHTS)

    def off_by_half_a_pixel(model, device, decoder, beta, batch_size):  # instant, so it would win on speed
        return Backend("channels_last", device, lambda x: (torch.full((len(x), 5, 2), 40.5), torch.ones(len(x), 5)))

    def broken(*args):
        raise RuntimeError("no such runtime")

    monkeypatch.setitem(registry.BUILDERS, "channels_last", off_by_half_a_pixel)
    monkeypatch.setitem(registry.BUILDERS, "openvino", broken)
    candidates = ("channels_last", "openvino")
    monkeypatch.setattr(auto, "available_backends", lambda device: dict.fromkeys(registry.BACKENDS))
    backend = auto.pick_backend(model, torch.device("cpu"), candidates=candidates)
    assert backend.name == "eager"
    record = json.loads(next((tmp_path / "backends" / "auto").glob("*.json")).read_text())
    assert "px from eager fp32 (> 0.1)" in record["skipped"]["channels_last"]
    assert record["skipped"]["openvino"] == "failed: RuntimeError: no such runtime"


def test_landmarker_runs_on_the_named_backend():
    skip_unless_present("onnxruntime", "cpu")
    image = cv2.cvtColor(cv2.VideoCapture(str(DEMO_CLIP)).read()[1], cv2.COLOR_BGR2RGB)
    rois = [crop_matrix(320.0, 220.0, 190.0, 80), crop_matrix(300.0, 200.0, 240.0, 80, rotation_deg=10.0)]
    eager, fast = Landmarker(WEIGHTS), Landmarker(WEIGHTS, backend="onnxruntime", batch_size=2)
    assert eager.backend.name == "eager" and fast.backend.name == "onnxruntime"
    (p1, s1), (p2, s2) = eager(image, rois), fast(image, rois)
    px_per_crop_px = 240.0 / 80  # the larger crop's scale: crop pixels -> image pixels
    assert np.abs(p1 - p2).max() < PARITY_TOLERANCE_PX * px_per_crop_px and np.abs(s1 - s2).max() < 1e-3


def test_threads_reach_the_runtime_and_torch_is_left_as_it_was(monkeypatch):
    """``threads`` is the count ONNX Runtime's session is built with (it reads torch's count at
    build time); torch's own count is back afterwards, also when the build fails."""
    skip_unless_present("onnxruntime", "cpu")
    import onnxruntime as ort

    built = []
    session = ort.InferenceSession

    def spy(path, options, **kwargs):
        built.append(options.intra_op_num_threads)
        return session(path, options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    before = torch.get_num_threads()
    Landmarker(WEIGHTS, backend="onnxruntime", threads=before + 1)
    make_backend("onnxruntime", load_model(WEIGHTS), "cpu")
    assert built == [before + 1, before] and torch.get_num_threads() == before
    with pytest.raises(UserError):
        make_backend("no-such-backend", load_model(WEIGHTS), "cpu", threads=before + 1)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("cores, torch_threads, expected", [(2, 2, 1), (1, 1, 1), (16, 8, 8), (8, 8, 7)])
def test_pipeline_threads_leave_a_core_for_the_other_threads(monkeypatch, cores, torch_threads, expected):
    monkeypatch.setattr(base.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(base.torch, "get_num_threads", lambda: torch_threads)
    assert base.pipeline_threads() == expected


def test_onnx_file_is_exported_once_atomically_by_content(tmp_path, monkeypatch):
    skip_unless_present("onnxruntime", "cpu")
    monkeypatch.setenv("RCN_CACHE", str(tmp_path))
    model = load_model(WEIGHTS)
    path = exported.onnx_file(model, "softargmax", 1.0)
    stamp = path.stat().st_mtime_ns
    assert exported.onnx_file(load_model(WEIGHTS), "softargmax", 1.0) == path and path.stat().st_mtime_ns == stamp
    assert exported.onnx_file(model, "argmax", 1.0) != path  # the decoder is part of the graph
    assert sorted(p.suffix for p in path.parent.iterdir()) == [".onnx", ".onnx"]  # no temporaries left


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize("preset", ["sumnet_mtfl", "rcn_300w"])
def test_both_onnx_exporters_match_eager_on_other_architectures(tmp_path, exporter, preset):
    ort = pytest.importorskip("onnxruntime")
    if exporter == "dynamo" and find_spec("onnxscript") is None:
        pytest.skip("onnxscript is not installed")
    sumnet = preset == "sumnet_mtfl"  # a masked branch (a Python branch in forward), the argmax decoder
    options = {"branch_mask": (1, 0, 1, 1, 1)} if sumnet else {"upsample": "learned", "normalise": "lcn"}
    torch.manual_seed(0)
    net = Decoded(build_model(make_config(preset, **options)).eval(), "argmax" if sumnet else "softargmax")
    x = torch.rand(3, 1, 80, 80)
    used = exported.export_onnx(net, x[:2], tmp_path / "m.onnx", exporter=exporter)
    assert used == exporter
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    points, scores = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref_points, ref_scores = net(x)
    assert np.abs(points - ref_points.numpy()).max() < 1e-3 and np.abs(scores - ref_scores.numpy()).max() < 1e-4


def test_buckets_pad_and_cut_back():
    assert [bucket(n) for n in (1, 2, 3, 5, 8, 9, 64, 65, 500)] == [1, 2, 4, 8, 8, 16, 64, 64, 64]
    seen = []

    def run(x):
        seen.append(len(x))
        return x[:, :1, 0, :2] * 1.0, x[:, 0, 0, :1]

    x = torch.rand(70, 1, 4, 4)
    points, scores = bucketed(run, x)
    assert seen == [64, 8] and points.shape == (70, 1, 2) and torch.equal(points[:, 0], x[:, 0, 0, :2])


@pytest.mark.parametrize("name", INT8)
def test_int8_model_is_quantized_once_and_reused(name, tmp_path, monkeypatch, caplog):
    skip_unless_present(name, "cpu")
    monkeypatch.setenv("RCN_CACHE", str(tmp_path))
    model = load_model(LANDMARKS_68)
    x = to_input(clip_crops(model.config.in_channels == 1, every=90), "cpu")
    with caplog.at_level("INFO", logger="realtime.backends"):
        first = make_backend(name, model, "cpu")(x)[0]
        second = make_backend(name, model, "cpu")(x)[0]
    assert sum("quantized the landmark model" in r.message for r in caplog.records) == 1
    assert torch.equal(first, second)
    made = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "backends" / "int8").rglob("*") if p.is_file())
    assert made and not any(part.startswith(".") for m in made for part in m.split("/"))  # no scratch left


def test_int8_without_the_bundled_clip_is_a_one_line_user_error(tmp_path, monkeypatch):
    skip_unless_present("onnxruntime_int8", "cpu")
    monkeypatch.setenv("RCN_CACHE", str(tmp_path))
    monkeypatch.setattr(quantized, "CLIP", tmp_path / "missing.mp4")
    with pytest.raises(UserError, match="int8 calibration needs the bundled clip") as info:
        make_backend("onnxruntime_int8", load_model(WEIGHTS), "cpu")
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "backends" / "int8").glob("*.onnx"))


def test_openvino_int8_without_nncf_names_the_extra(monkeypatch):
    real = registry.find_spec
    monkeypatch.setattr(registry, "find_spec", lambda name: None if name == "nncf" else real(name))
    reason = available_backends("cpu")["openvino_int8"]
    assert reason and "nncf is not installed" in reason and "[int8]" in reason
    with pytest.raises(UserError, match="'openvino_int8' cannot run on cpu here: nncf is not installed"):
        make_backend("openvino_int8", load_model(WEIGHTS), "cpu")
