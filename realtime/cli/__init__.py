"""The command lines' shared pieces (the command lines themselves are the package's top-level
modules: ``python -m realtime.video``, ``realtime.webcam``, ``realtime.bench``, ``realtime.clipscore``)."""
