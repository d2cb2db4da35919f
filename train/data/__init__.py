"""Training data: the dataset readers (``datasets``), augmentation, the loader, and the synthetic
benchmark's drawing code.
"""
