"""Frames in (``capture``: camera, video file, image, folder) and out (``video_out``: H.264
video, landmark records, the drawn overlay). Imports pipeline's packet and below.
"""
