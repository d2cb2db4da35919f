"""Where labels come from besides people: dlib's 68-point predictor as a teacher (``teacher``, the
files it writes: ``teacher_files``), MediaPipe's face mesh for depth (``facemesh``), head pose by
solvePnP on the mean face (``headpose``), and the demo clip's astronaut and truth (``democlip``).
"""
