"""The frame pipeline, a module per job: ``config`` (``PipelineConfig``, ``RunStats``), ``processor``
(``FrameProcessor``, the per-frame chain and the one builder), ``pooling`` (one frame of several
streams with pooled model calls), ``capture_thread`` (decoding on its own thread, lossless),
``runners`` (``run_file``, ``run_streams``), ``mailbox`` and ``live_pipeline`` (``LivePipeline``,
newest frame wins), ``live`` (live tuning), ``cliptruth`` (clip scoring). The only package of
``realtime`` whose modules start threads. Imports stages and below.
"""
