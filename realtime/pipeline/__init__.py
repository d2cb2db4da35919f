"""The frame processor and its runners (``processor``: the one builder, file, live and
multi-stream runners), the packet a frame becomes, the mailbox, the live-tuning parameters and
clip scoring. Imports stages and below.
"""
