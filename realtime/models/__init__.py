"""The RCN networks and presets, soft-argmax decoding, the weights file (one reader), the 2018
attribute head, the 2016 denoiser and the pose head. Imports core, geometry and torch.
"""
