"""``realtime.core.altstack``: a signal that arrives after a library unmapped the thread's signal stack
(what OpenVINO's CPU plugin does, issue 23) is handled, not a segmentation fault. The signal tests run
in a child process: without the guard the child dies, and the suite goes on to say so."""
from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import pytest

from realtime.core import altstack

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack/mincore: Linux")

# Gives the calling thread a signal stack in fresh pages, then unmaps them: the state OpenVINO leaves.
UNMAP_THE_SIGNAL_STACK = textwrap.dedent("""
    import ctypes
    from realtime.core.altstack import _StackT
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    def unmap_the_signal_stack(size=1 << 16):
        address = libc.mmap(None, size, 3, 0x22, -1, 0)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
        assert libc.sigaltstack(ctypes.byref(_StackT(address, 0, size)), None) == 0
        assert libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size)) == 0
        return address
""")


def run_child(body: str) -> subprocess.CompletedProcess:
    script = UNMAP_THE_SIGNAL_STACK + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_without_the_guard_such_a_signal_is_a_segmentation_fault():
    """The failure the guard is for, shown with nothing but ``signal``: the child is killed."""
    child = run_child("""
        import os, signal
        unmap_the_signal_stack()
        signal.signal(signal.SIGINT, lambda s, f: print("handled"))
        os.kill(os.getpid(), signal.SIGINT)
        print("survived")
    """)
    assert child.returncode == -11 and "survived" not in child.stdout


def test_a_stop_signal_in_training_after_the_stack_was_unmapped_saves_and_re_raises():
    child = run_child("""
        import os, signal, torch
        from train.engine.loop import run_updates
        signal.signal(signal.SIGINT, signal.default_int_handler)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        seen, saved = [], []
        def loss_fn(x):
            if len(seen) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return model(x).pow(2).mean()
        def batches():
            while True:
                yield 0, torch.ones(4, 2)
        unmap_the_signal_stack()
        try:
            run_updates(0, 100, batches(), loss_fn, opt, lambda s, e, loss: seen.append(s), saved.append)
        except KeyboardInterrupt:
            print("stopped after", seen[-1], "saved", saved)
    """)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "stopped after 3 saved [3]"


def test_openvino_cores_released_in_creation_order_leave_the_signal_stack_as_it_was(tmp_path):
    """The backends' OpenVINO path: two compiled models dropped oldest first (which, unguarded, leaves
    the first one's unmapped stack in place), then a signal with a plain Python handler."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    child = run_child(f"""
        import gc, os, signal
        import onnx, torch
        from onnx import TensorProto, helper
        from realtime.backends.exported import ov_backend
        from realtime.core import altstack
        path = {str(tmp_path / "m.onnx")!r}
        io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in ("x", "a", "b")]
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["b"])],
                                  "two", io[:1], io[1:])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        before = altstack.current()
        first = ov_backend("openvino", path, torch.device("cpu"), "f32", "")
        second = ov_backend("openvino", path, torch.device("cpu"), "f32", "")
        del first; gc.collect()
        del second; gc.collect()
        assert altstack.current() == before, (altstack.current(), before)
        signal.signal(signal.SIGINT, lambda s, f: print("handled"))
        os.kill(os.getpid(), signal.SIGINT)
    """)
    assert child.returncode == 0 and child.stdout.strip() == "handled", child.stderr[-2000:]


def test_ensure_replaces_only_an_unmapped_stack():
    namespace: dict = {}
    exec(UNMAP_THE_SIGNAL_STACK, namespace)  # the helper, in this process
    original = altstack.current()
    try:
        assert not altstack.ensure()  # the stack this process runs with (none, or faulthandler's) is fine
        address = namespace["unmap_the_signal_stack"]()
        assert altstack.current()[0] == address and not altstack.is_mapped(address, 1 << 16)
        assert altstack.ensure()
        new_address, size, flags = altstack.current()
        assert new_address != address and size == altstack.STACK_BYTES and altstack.is_mapped(new_address, size)
        assert not altstack.ensure()
    finally:
        altstack._set(*original)  # faulthandler's stack (or none) back, as the rest of the suite expects


def test_kept_restores_the_stack_a_library_replaced():
    original = altstack.current()
    buffer = ctypes.create_string_buffer(1 << 15)
    try:
        with altstack.kept():
            assert altstack._set(ctypes.addressof(buffer), 1 << 15, 0)
        assert altstack.current() == original
    finally:
        altstack._set(*original)
