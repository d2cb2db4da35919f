"""BlazeFace: anchors, decoding and NMS (``blazeface``), its OpenCV runner and ``make_detector``
(``detector``), and the PyTorch port (``blazeface_torch``). Imports core and geometry.
"""
