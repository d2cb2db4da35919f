"""``python -m train.teacher``: runs the teacher's command line, ``train/teacher_cli.py``.

The teacher itself (dlib's HOG detector + 68-point shape predictor, its refusal rules) is the
library module ``train/labels/teacher.py``.
"""
from __future__ import annotations

import runpy

if __name__ == "__main__":
    runpy.run_module("train.teacher_cli", run_name="__main__", alter_sys=True)
