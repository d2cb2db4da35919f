"""The tools that make the shipped assets and the numbers of the comparison pages, apart from the
training library they use (``train.labels``, ``train.data``, ...), each a command line
``python -m train.tools.NAME`` named for what it makes:

- ``make_blazeface_weights``: ``assets/blazeface/*.safetensors`` from the shipped ``.tflite`` files;
- ``make_demo_clip``: ``assets/demo.mp4`` and ``assets/demo_truth.json`` (and, relabelled,
  ``assets/astronaut_68.pts``);
- ``make_mean_face``: ``assets/mean_face_68.npy``, and head-pose attributes for a labelled folder;
- ``make_teacher_labels``: dlib teacher labels for photos and folders (``rcn teacher``);
- ``make_faceset``: the teacher-labelled real-face set, split by person;
- ``make_synthetic_preview``: a preview sheet (and a timing run) of the synthetic benchmark;
- ``score_detector``: what a detector setting finds and what the tracker makes of it
  (docs/detection.md);
- ``check_head_pose``: head pose from the mean face against the demo clip's known motion
  (docs/head_pose.md).

They sit in the installed ``train`` package, not in the repository's ``tools/`` folder (maintainer
scripts run from a checkout, never shipped), because they import the training library, run as
``python -m`` from an install, and ``rcn teacher`` reaches one through an entry point. Like the
commands at ``train/``'s top, no module imports them (``tests/test_import_rules.py``).
"""
