"""Turned search on/off on upright footage: the pipeline through the API over the bundled clip, rounds interleaved."""
# Run from the repository root with the machine otherwise idle: python tools/turned_search_cost.py
import time, statistics
from realtime import FaceLandmarker
lm = {v: FaceLandmarker(turned_search=v) for v in (True, False)}
for v in lm: sum(1 for _ in lm[v].track("assets/demo.mp4"))  # warm-up
res = {True: [], False: []}
for r in range(4):
    for v in (True, False):
        t = time.perf_counter(); n = sum(1 for _ in lm[v].track("assets/demo.mp4")); res[v].append(n / (time.perf_counter() - t))
for v in res: print("turned_search", v, [round(x, 1) for x in res[v]], "median", round(statistics.median(res[v]), 1))
print("ratio per round off/on:", [round(b / a, 3) for a, b in zip(res[True], res[False])])
