"""``tools/capacity_budget.py``'s candidate specs: each names the architecture it times."""
import importlib.util
from pathlib import Path

import pytest

from realtime.models.model import SeparableConv, multiply_adds

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("capacity_budget", REPO / "tools" / "capacity_budget.py")
capacity_budget = importlib.util.module_from_spec(spec)
spec.loader.exec_module(capacity_budget)


def test_candidate_specs_build_the_named_variants_of_the_bundled_architecture():
    bundled = capacity_budget.candidate("0.5:2")
    assert (bundled.config.separable, bundled.config.trunk_separable, bundled.config.trunk) == (2, 0, (32,) * 5)
    slim = capacity_budget.candidate("0.5:3:1")
    assert (slim.config.separable, slim.config.trunk_separable) == (3, 1)
    assert isinstance(slim.trunk[1][0], SeparableConv) and multiply_adds(slim) < multiply_adds(bundled)
    student = capacity_budget.candidate("0.5:2:0:16/32/32/32/32")
    assert student.config.trunk == (16, 32, 32, 32, 32)
    for bad in ("0.5", "0.5:x", "0.5:2:1:16,32", "0.5:2:0:16/32:9"):
        with pytest.raises(SystemExit, match="is not WIDTH:SEPARABLE"):
            capacity_budget.candidate(bad)
