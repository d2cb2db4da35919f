"""The per-frame stages: batched landmarks (``landmarker``, ``device_crops``), tracks (``tracker``)
and One Euro smoothing (``smoothing``). Imports the layers below.
"""
