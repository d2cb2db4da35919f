"""The systems we measure against: MediaPipe's face mesh and dlib's model file (optional
dependencies, imported lazily).
"""
