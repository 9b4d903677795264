import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"


@pytest.mark.slow
def test_throughput_benchmark_reports_both_loops_and_memory():
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--steps",
            "5",
            "--rounds",
            "2",
            "--warmup",
            "2",
            "model.channels=[4, 8]",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rates = re.findall(r"([\d,]+) samples/s", result.stdout)
    assert len(rates) == 2
    assert all(float(rate.replace(",", "")) > 0 for rate in rates)
    assert re.search(r"ratio \(project/minimal\):\s+\d+\.\d{3}", result.stdout)
    assert re.search(r"peak .*memory.*MiB", result.stdout)


def test_benchmark_refuses_bad_settings():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "train.lr=fast"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: train.lr: expected a number, got 'fast'"
