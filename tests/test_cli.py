"""The ``aionas`` command, run for real in a subprocess."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

AIONAS = [sys.executable, "-m", "aionas.cli"]

TINY = textwrap.dedent(
    """
    import threading
    import aionas
    from aionas.space import Choice, Int

    space = {"x": Int(0, 4), "act": Choice(["relu", "tanh"])}

    def evaluate(params):
        score = -(params["x"] - 2) ** 2 + (0.5 if params["act"] == "tanh" else 0.0)
        for epoch in range(3):
            aionas.report_intermediate_result(score - (2 - epoch) * 0.1)
        return score
    """
)

SLOW = TINY.replace(
    "        aionas.report_intermediate_result(score - (2 - epoch) * 0.1)\n",
    "        aionas.report_intermediate_result(score - (2 - epoch) * 0.1)\n"
    "        for _ in range(10):  # an epoch of training that notices cancellation\n"
    "            threading.Event().wait(0.01)\n"
    "            aionas.check_cancelled()\n",
)


def aionas(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*AIONAS, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def history(cwd: Path, journal: str = "aionas.db") -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(
        aionas("history", journal, "--json", cwd=cwd).stdout
    )
    return items


def test_run_a_tiny_search_then_history_and_plot(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    run = aionas("run", "tiny.py", "--strategy", "grid", "--max-models", "10", cwd=tmp_path)
    assert "start  #1 x=0, act=relu" in run.stdout  # plain logs: not a terminal
    assert "best: 0.5 (#6) x=2, act=tanh" in run.stdout
    assert (tmp_path / "aionas.db").is_file()

    items = history(tmp_path)
    assert len(items) == 10
    assert {"id", "params", "status", "metric", "intermediates"} <= set(items[0])
    assert items[0]["params"] == {"x": 2, "act": "tanh"}
    assert items[0]["metric"] == 0.5
    assert items[0]["intermediates"] == pytest.approx([0.3, 0.4, 0.5])
    assert {item["status"] for item in items} == {"trained"}

    table = aionas("history", "--top", "3", cwd=tmp_path).stdout
    assert "leaderboard" in table
    assert "x=2, act=tanh" in table
    assert table.count("trained") == 3
    failed = aionas("history", "--status", "failed", "--json", cwd=tmp_path).stdout
    assert json.loads(failed) == []
    worst = json.loads(aionas("history", "--mode", "min", "--json", cwd=tmp_path).stdout)
    assert worst[0]["metric"] == min(item["metric"] for item in items)  # type: ignore[type-var]
    bad = aionas("history", "--status", "done", cwd=tmp_path, check=False)
    assert bad.returncode == 2
    assert "unknown status 'done'" in bad.stderr

    plot = aionas("plot", "-o", "curves.png", cwd=tmp_path)
    assert "wrote curves.png" in plot.stdout
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 100
    assert height > 100


def test_running_again_resumes_and_respects_the_budget(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    aionas("run", "tiny.py", "--max-models", "4", "--seed", "1", cwd=tmp_path)
    again = aionas("run", "tiny.py", "--max-models", "7", "--seed", "1", cwd=tmp_path)
    assert "resuming 'tiny' from aionas.db: 4 models so far" in again.stdout
    items = history(tmp_path)
    assert len(items) == 7
    points = [json.dumps(item["params"], sort_keys=True) for item in items]
    assert len(set(points)) == 7  # random search with dedup: no repeats across runs
    spent = aionas("run", "tiny.py", "--max-models", "7", cwd=tmp_path)
    assert "budget is already spent" in spent.stdout


def test_sigint_stops_cleanly_and_the_same_command_resumes(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    command = [*AIONAS, "run", "slow.py", "--max-models", "6", "--strategy", "grid"]
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("start  #3"):
                    process.send_signal(signal.SIGINT)
                    break
            rest = process.stdout.read()
            assert process.stderr is not None
            errors = process.stderr.read()
            process.wait()
        finally:
            watchdog.cancel()
    assert process.returncode == 130, "".join(lines) + rest + errors
    assert "stopping (Ctrl+C): model #3 is asked to stop" in errors
    assert "stopped: #3 ended Interrupted" in errors
    assert "is consistent" in errors
    assert "aionas run slow.py --max-models 6 --strategy grid" in errors
    items = history(tmp_path)
    by_id = {item["id"]: item for item in items}
    assert by_id[3]["status"] == "interrupted"
    assert [by_id[i]["status"] for i in (1, 2)] == ["trained", "trained"]

    again = aionas("run", "slow.py", "--max-models", "6", "--strategy", "grid", cwd=tmp_path)
    assert "resuming 'slow'" in again.stdout
    items = history(tmp_path)
    assert len(items) == 6
    assert {item["status"] for item in items} == {"trained"}  # #3 was run again


def test_bad_search_files_get_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = aionas("run", "empty.py", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "must define `space`" in result.stderr
    missing = aionas("run", "nope.py", cwd=tmp_path, check=False)
    assert missing.returncode == 2
    assert "no search file" in missing.stderr
    (tmp_path / "cont.py").write_text(
        "from aionas.space import Float\nspace = {'lr': Float(0.1, 1.0)}\n"
        "def evaluate(p):\n    return p['lr']\n"
    )
    grid = aionas("run", "cont.py", "--strategy", "grid", cwd=tmp_path, check=False)
    assert grid.returncode == 2
    assert "continuous" in grid.stderr
    nothing = aionas("history", "missing.db", cwd=tmp_path, check=False)
    assert nothing.returncode == 2
    assert "does not exist" in nothing.stderr


def test_demo_runs_the_digits_search(tmp_path: Path) -> None:
    result = aionas("demo", "--max-models", "3", "--journal", "demo.db", cwd=tmp_path)
    assert "end    #3 trained" in result.stdout
    items = history(tmp_path, "demo.db")
    assert len(items) == 3
    assert max(float(str(item["metric"])) for item in items) > 0.9


def test_pytorch_example_runs_when_torch_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    example = Path(__file__).resolve().parent.parent / "examples" / "digits_mlp_torch.py"
    result = aionas("run", str(example), "--max-models", "2", "--journal", "t.db", cwd=tmp_path)
    assert "end    #2 trained" in result.stdout
    assert max(float(str(item["metric"])) for item in history(tmp_path, "t.db")) > 0.9


def test_bad_numbers_are_refused_by_the_command(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    result = aionas("run", "tiny.py", "--max-models", "0", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "must be a finite number > 0" in result.stderr
    assert not (tmp_path / "aionas.db").exists()
