"""Point layouts, crop matrices, head-pose maths and the 3D mean face. Imports ``realtime.core``.
"""
