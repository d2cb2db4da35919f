"""The import graph's rules, checked by walking every module's imports (``ast``, nothing imported):

- the runtime (``realtime``) imports nothing from ``train`` (training depends on the runtime, never
  the other way round: an install for live use needs none of the training code);
- only the GUI modules import Qt (``pyqtgraph``, ``PySide6``);
- no import cycles between the project's modules;
- no runtime module imports a runtime command line (``REALTIME_CLIS``): what they share lives in
  library modules (``realtime.core.cliargs``, ``realtime.pipeline.cliptruth``, ``realtime.core.measure``).
- no module imports a ``train`` command line (``train_clis``: its top-level modules, ``python -m
  train.X``, ``train.__main__`` and the asset-making and comparison tools of ``train.tools``),
  command lines included: what they share lives in the library sub-packages
  (``train.recipes.faces68_recipe``, ``train.labels.teacher``, ``train.labels.democlip``, ...).

Imports inside functions count too: a lazy import is still an arrow. And imports sit at module top
except for optional dependencies (``LOCAL_IMPORTS_ALLOWED``), imported where they are used so that a
missing one costs only the feature that needs it.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REALTIME_CLIS = {"realtime.video", "realtime.webcam", "realtime.bench", "realtime.clipscore"}
GUI_MODULES = {"realtime.gui", "realtime.gui.overlay", "realtime.gui.overlay_items"}
QT = ("pyqtgraph", "PySide6", "PyQt5", "PyQt6")


def modules() -> dict[str, Path]:
    found = {}
    for package in ("realtime", "train"):
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_names(path: Path) -> set[str]:
    """Every dotted name an ``import`` or ``from ... import`` of ``path`` names (absolute imports;
    ``from a.b import c`` gives both ``a.b`` and ``a.b.c``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: {m for m in imported_names(path) if m in mods and m != name} for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_runtime_imports_nothing_from_train():
    arrows = sorted((a, b) for a, targets in graph().items() for b in targets
                    if a.startswith("realtime") and b.split(".")[0] == "train")
    raw = sorted((name, m) for name, path in modules().items() if name.startswith("realtime")
                 for m in imported_names(path) if m.split(".")[0] == "train")
    assert arrows == [] and raw == [], raw


def test_only_the_gui_imports_qt():
    importers = sorted(name for name, path in modules().items()
                       if any(m.split(".")[0] in QT for m in imported_names(path)))
    assert set(importers) <= GUI_MODULES, importers


def test_no_runtime_module_imports_a_runtime_command_line():
    arrows = sorted((a, b) for a, targets in graph().items() for b in targets if b in REALTIME_CLIS and a != b)
    assert arrows == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_pipeline_is_assembled_in_one_place():
    """Every caller builds the frame pipeline through ``FrameProcessor.from_config``: the class is
    called directly only in ``realtime.pipeline.processor`` (and in tests, which assemble stand-ins)."""
    direct = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "FrameProcessor":
                direct.append(f"{name}:{node.lineno}")
    assert all(d.startswith("realtime.pipeline.processor:") for d in direct), direct


# realtime's layers, bottom to top; a module may import its own layer and the layers below it.
# ``api`` is the module ``realtime.api`` (the Python front door), above the pipeline it assembles.
LAYERS = ("core", "geometry", "models", "backends", "detect", "stages", "io", "pipeline", "compare", "api", "gui",
          "cli")


def layer_of(module: str) -> int:
    """The layer of a ``realtime`` module: its sub-package (or ``realtime.api``), or ``cli`` for the
    top-level command lines (``realtime.video`` and the others). The package's ``__init__`` is the
    package's face, with the command lines: it hands out ``realtime.api.FaceLandmarker``."""
    parts = module.split(".")
    if len(parts) == 1:
        return LAYERS.index("cli")
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else LAYERS.index("cli")


def test_realtime_is_layered_and_no_arrow_points_up():
    up = sorted((a, b) for a, targets in graph().items() if a.startswith("realtime")
                for b in targets if b.startswith("realtime") and layer_of(b) > layer_of(a))
    assert up == [], up


def test_the_tree_has_the_layers_as_sub_packages():
    """Every runtime module sits in its layer's sub-package except the command lines and the
    Python API, which are the package's face (``python -m realtime.video``, ``from realtime
    import FaceLandmarker``)."""
    flat = sorted(name for name in modules() if name.startswith("realtime.") and name.count(".") == 1
                  and name.split(".")[1] not in LAYERS)
    assert flat == sorted(REALTIME_CLIS), flat


# train's library layers, bottom to top; its command lines (``python -m train``, ``train.reproduce``,
# ``train.faces68`` and the other top-level modules, and the tools in ``train.tools``) stand above them all.
TRAIN_LAYERS = ("data", "objectives", "evaluation", "labels", "engine", "recipes", "cli")


def train_layer_of(module: str) -> int:
    parts = module.split(".")
    return TRAIN_LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in TRAIN_LAYERS else TRAIN_LAYERS.index("cli")


def test_train_is_layered_and_its_library_imports_no_command_line():
    up = sorted((a, b) for a, targets in graph().items() if a.startswith("train.")
                for b in targets if b.startswith("train") and train_layer_of(b) > train_layer_of(a))
    assert up == [], up


def train_clis() -> set[str]:
    """``train``'s command lines: every module directly under ``train/`` (``train.faces68``,
    ``train.__main__``, ...) and every tool under ``train/tools/`` (``train.tools.make_demo_clip``,
    ...), the layer ``train_layer_of`` puts above the library; the packages' ``__init__``
    (``train``, ``train.tools``) are not."""
    return {name for name, path in modules().items() if train_layer_of(name) == TRAIN_LAYERS.index("cli")
            and path.name != "__init__.py" and name.startswith("train.")
            and (name.count(".") == 1 or name.startswith("train.tools."))}


def test_no_module_imports_a_train_command_line():
    clis = train_clis()
    assert {"train.faces68", "train.tools.make_demo_clip", "train.tools.make_mean_face", "train.__main__"} <= clis
    assert not clis & {"train", "train.labels", "train.recipes", "train.tools"}
    arrows = sorted((a, b) for a, targets in graph().items() for b in targets if b in clis)
    assert arrows == [], arrows


# Packages a function may import itself: optional extras (video, gui, fast, train, teacher,
# mediapipe), loaded where they are used so that their absence costs only that feature; and
# train.data.synthetic, which a dataset spec loads only when it names "synth:" (it imports the
# dataset package itself, so a top-level import would be a cycle).
LOCAL_IMPORTS_ALLOWED = {
    "av", "PySide6", "pyqtgraph", "dlib", "matplotlib", "mediapipe", "nncf", "onnx", "onnxruntime", "openvino",
    "scipy", "skimage", "tflite", "torch_tensorrt", "tqdm", "train.data.synthetic",
    "realtime.gui.overlay",  # imports Qt at its top: the webcam loads it after realtime.gui.check_qt
    "realtime.api",  # imports torch: the package's __getattr__ loads it on first use, so `import realtime` stays cheap
}


def local_imports(path: Path) -> set[str]:
    """The modules ``path`` imports inside functions."""
    found = set()
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    found.add(node.module)
    return found


def test_imports_sit_at_module_top_except_optional_dependencies():
    def allowed(name: str) -> bool:
        return any(name == a or name.startswith(a + ".") for a in LOCAL_IMPORTS_ALLOWED)

    local = sorted((m, name) for m, path in modules().items() for name in local_imports(path) if not allowed(name))
    assert local == [], local


def test_trains_top_holds_only_its_commands_and_the_tools_their_own_package():
    """The asset-making and comparison tools live in ``train/tools/``, apart from the library they
    use; ``train/``'s top keeps the training commands (and ``train.compare``, a published command)."""
    flat = sorted(name for name in modules() if name.startswith("train.") and name.count(".") == 1
                  and train_layer_of(name) == TRAIN_LAYERS.index("cli") and name != "train.tools")
    assert flat == ["train.__main__", "train.compare", "train.faces68", "train.faces68_ablate", "train.reproduce"], flat
    assert {"train.tools.make_demo_clip", "train.tools.make_teacher_labels"} <= train_clis()


def module_stems() -> dict[str, list[str]]:
    """Every module of ``realtime/``, ``train/`` and the maintainer scripts of ``tools/`` by its
    name with underscores and case dropped (``demo_clip`` and ``democlip`` are one name), the
    package files ``__init__`` and ``__main__`` left out."""
    found: dict[str, list[str]] = {}
    for folder in ("realtime", "train", "tools"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.stem not in ("__init__", "__main__"):
                found.setdefault(path.stem.replace("_", "").lower(), []).append(path.relative_to(REPO).as_posix())
    return found


def test_no_two_modules_share_a_name():
    """Twins (``train/faces68.py`` the command and ``train/recipes/faces68.py`` its recipe,
    ``realtime/geometry/meanface.py`` and a tool called ``meanface``) make every mention ambiguous:
    a name in the tree means one module."""
    twins = {stem: paths for stem, paths in module_stems().items() if len(paths) > 1}
    assert twins == {}, twins
    assert {"meanface", "makedemoclip", "speedrounds"} <= set(module_stems())  # the walk sees all three folders
