"""Where labels come from besides people: MediaPipe's face mesh as a teacher.
"""
