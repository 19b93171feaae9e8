"""The command as a newcomer meets it: pipes, signals, NaN, an experiment that remembers itself.

Every test runs the real command in a subprocess. Models that must be "in the
middle of an epoch" wait for a file the test creates (``go``), so nothing here
sleeps to synchronise.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .test_cli import AIONAS, TINY, aionas, history

#: An epoch that says nothing until the test creates ``go`` in the working directory.
SILENT = textwrap.dedent(
    """
    import os, threading
    import aionas
    from aionas.space import Int

    space = {"x": Int(0, 9)}

    def evaluate(params):
        for epoch in range(2):
            while not os.path.exists("go"):  # a long, silent epoch
                threading.Event().wait(0.01)
            aionas.report_intermediate_result(params["x"] + epoch)
        return params["x"]
    """
)

#: Some models end with NaN as their final metric.
NANS = textwrap.dedent(
    """
    from aionas.space import Int

    space = {"x": Int(0, 9)}

    def evaluate(params):
        return float("nan") if params["x"] % 2 else params["x"] / 100
    """
)


def jsonl(cwd: Path, *args: str) -> list[dict[str, object]]:
    out = aionas("history", *args, "--jsonl", cwd=cwd).stdout
    return [json.loads(line) for line in out.splitlines()]


@contextmanager
def running(cwd: Path, *args: str, **popen: object) -> Iterator[subprocess.Popen[str]]:
    """The command, started; killed if a test leaves it running (a watchdog too)."""
    process = subprocess.Popen(
        [*AIONAS, *args],
        cwd=cwd,
        stdout=popen.pop("stdout", subprocess.PIPE),  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def read_until(stream: io.TextIOBase, wanted: str) -> str:
    """Lines of ``stream`` up to and including the first that contains ``wanted``."""
    seen = []
    for line in stream:
        seen.append(line)
        if wanted in line:
            return "".join(seen)
    raise AssertionError(f"never saw {wanted!r} in:\n{''.join(seen)}")


# ------------------------------------------------------------------ pipes


def test_history_into_a_pipe_closed_early_exits_quietly(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    aionas("run", "tiny.py", "--max-models", "10", cwd=tmp_path)
    for output in ("--json", "--jsonl", "--csv", None):
        args = ["history"] + ([output] if output else [])
        shell = " ".join([*AIONAS, *args]) + " | head -1"
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", shell],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (output, result.stderr)
        assert result.stderr == "", (output, result.stderr)
        assert len(result.stdout.splitlines()) == 1


def test_a_run_piped_into_head_goes_on_to_the_end(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    with running(tmp_path, "run", "tiny.py", "--strategy", "grid", "--max-models", "8") as p:
        assert p.stdout is not None
        assert p.stderr is not None
        first = [p.stdout.readline(), p.stdout.readline()]
        p.stdout.close()  # what `| head -2` does after two lines
        errors = p.stderr.read()
        assert p.wait() == 0, errors
    assert first[0].startswith("start  #1")
    assert "Traceback" not in errors
    assert "BrokenPipe" not in errors
    items = history(tmp_path)
    assert len(items) == 8
    assert {i["status"] for i in items} == {"trained"}


def test_line_mode_labels_each_metric_with_its_own_epoch(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    out = aionas("run", "tiny.py", "--strategy", "grid", "--max-models", "2", cwd=tmp_path).stdout
    metrics = [line for line in out.splitlines() if line.startswith("metric #1 ")]
    assert [line.split(":")[0] for line in metrics] == [
        "metric #1 epoch 1",
        "metric #1 epoch 2",
        "metric #1 epoch 3",
    ]


# ------------------------------------------------------------------ stopping


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGINT, 130, "Ctrl+C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_says_at_once_it_is_stopping_then_ends_the_model_interrupted(
    tmp_path: Path, signum: int, code: int, name: str
) -> None:
    (tmp_path / "silent.py").write_text(SILENT)
    with running(tmp_path, "run", "silent.py", "--strategy", "grid", "--max-models", "4") as p:
        assert p.stdout is not None
        assert p.stderr is not None
        read_until(p.stdout, "start  #1")
        p.send_signal(signum)
        # Said while the model is still in its silent epoch: nothing has reported yet.
        notice = read_until(p.stderr, "stopping (")
        assert f"stopping ({name}): model #1 is asked to stop" in notice
        again = "press Ctrl+C" if signum == signal.SIGINT else "send SIGTERM"
        assert f"To stop without waiting, {again} again." in notice
        (tmp_path / "go").touch()  # the epoch ends; its report is where the model stops
        rest = p.stderr.read()
        assert p.wait() == code, rest
    assert "stopped: #1 ended Interrupted" in rest
    assert "is consistent" in rest
    assert "aionas run silent.py --strategy grid --max-models 4" in rest
    (item,) = jsonl(tmp_path)
    assert (item["status"], item["reason"]) == ("interrupted", "shutdown")


def stop_twice(tmp_path: Path, *options: str) -> str:
    """Run SILENT, press Ctrl+C twice while model #1 is in its silent epoch (which never
    ends: no `go`); what it said on stderr after the first notice, once it exited 130."""
    (tmp_path / "silent.py").write_text(SILENT)
    with running(tmp_path, "run", "silent.py", *options) as p:
        assert p.stdout is not None
        assert p.stderr is not None
        read_until(p.stdout, "start  #1")
        p.send_signal(signal.SIGINT)
        read_until(p.stderr, "stopping (Ctrl+C)")
        p.send_signal(signal.SIGINT)
        rest = p.stderr.read()
        assert p.wait() == 130, rest
    return rest


def test_a_second_ctrl_c_stops_without_waiting_and_nothing_is_left_training(
    tmp_path: Path,
) -> None:
    rest = stop_twice(tmp_path, "--max-models", "4")
    assert "stopping now (Ctrl+C again): model #1 is given up" in rest
    assert "stopped: #1 ended Interrupted" in rest
    assert "is consistent" in rest
    (item,) = jsonl(tmp_path)
    assert (item["status"], item["reason"]) == ("interrupted", "shutdown")
    (tmp_path / "go").touch()
    again = aionas("run", "silent.py", "--max-models", "4", cwd=tmp_path)  # resumes
    assert "resuming 'silent'" in again.stdout
    assert {i["status"] for i in jsonl(tmp_path)} == {"trained"}


def test_the_live_panel_clock_runs_between_events_and_shows_the_stop(tmp_path: Path) -> None:
    (tmp_path / "silent.py").write_text(SILENT)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "40", "TERM": "xterm"}
    with running(tmp_path, "run", "silent.py", "--max-models", "2", stdout=follower, env=env) as p:
        os.close(follower)
        screen = ""

        def wait_for(text: str) -> None:
            nonlocal screen
            deadline = time.monotonic() + 30
            while text not in screen:
                assert time.monotonic() < deadline, f"never saw {text!r}:\n{screen[-2000:]}"
                ready, _, _ = select.select([leader], [], [], 1)
                if ready:
                    try:
                        screen += os.read(leader, 65536).decode(errors="replace")
                    except OSError:  # the command has exited
                        break

        wait_for("running")
        wait_for("2 s elapsed")  # no event since the start: the clock still runs
        p.send_signal(signal.SIGINT)
        wait_for("stopping (Ctrl+C)")
        (tmp_path / "go").touch()
        assert p.wait() == 130
        os.close(leader)
    (item,) = jsonl(tmp_path)
    assert item["status"] == "interrupted"


# ------------------------------------------------------------------ ranking


def test_nan_never_ranks_above_a_real_result(tmp_path: Path) -> None:
    (tmp_path / "nans.py").write_text(NANS)
    aionas("run", "nans.py", "--strategy", "grid", "--max-models", "10", cwd=tmp_path)
    items = jsonl(tmp_path)
    metrics = [item["metric"] for item in items]
    assert metrics[:5] == [0.08, 0.06, 0.04, 0.02, 0.0]
    assert metrics[5:] == ["NaN"] * 5
    table = aionas("history", cwd=tmp_path).stdout
    assert table.index("0.08") < table.index(" nan ")
    low = jsonl(tmp_path, "--mode", "min")
    assert [item["metric"] for item in low][:2] == [0.0, 0.02]


# ------------------------------------------------------------------ the experiment remembers


def test_the_experiment_remembers_its_direction_strategy_and_seed(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    aionas(
        "run", "tiny.py", "--mode", "min", "--strategy", "grid", "--max-models", "4", cwd=tmp_path
    )
    ranked = jsonl(tmp_path)
    assert [i["metric"] for i in ranked] == sorted(i["metric"] for i in ranked)  # type: ignore[type-var]
    aionas("plot", "-o", "c.png", cwd=tmp_path)
    listed = json.loads(aionas("experiments", "--json", cwd=tmp_path).stdout)
    assert [(e["experiment"], e["mode"], e["strategy"], e["seed"]) for e in listed] == [
        ("tiny", "min", "grid", 0)
    ]
    assert listed[0]["metadata"]["space"] == {"x": "Int(0, 4)", "act": "Choice(['relu', 'tanh'])"}
    # Run again with no options: it resumes as min, by grid.
    again = aionas("run", "tiny.py", "--max-models", "6", cwd=tmp_path)
    assert "resuming 'tiny'" in again.stdout
    assert [i["id"] for i in jsonl(tmp_path)][-1] != 1 or len(jsonl(tmp_path)) == 6
    listed = json.loads(aionas("experiments", "--json", cwd=tmp_path).stdout)
    assert (listed[0]["mode"], listed[0]["strategy"]) == ("min", "grid")
    # An explicit other seed is taken, and said.
    other = aionas("run", "tiny.py", "--max-models", "7", "--seed", "5", cwd=tmp_path)
    assert "continues with --seed 5 (it ran with 0 so far)" in other.stderr
    # An explicit other direction is refused, the journal untouched.
    refused = aionas(
        "run", "tiny.py", "--mode", "max", "--max-models", "9", cwd=tmp_path, check=False
    )
    assert refused.returncode == 2
    assert "was run with mode 'min', and --mode is 'max'" in refused.stderr
    assert "--experiment NAME" in refused.stderr
    assert len(jsonl(tmp_path)) == 7


def test_a_changed_space_is_refused_and_a_new_experiment_is_a_name_away(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    aionas("run", "tiny.py", "--max-models", "3", cwd=tmp_path)
    (tmp_path / "tiny.py").write_text(TINY.replace("Int(0, 4)", "Int(0, 8)"))
    refused = aionas("run", "tiny.py", "--max-models", "6", cwd=tmp_path, check=False)
    assert refused.returncode == 2
    assert "another search space (x: Int(0, 4) -> Int(0, 8))" in refused.stderr
    assert "--experiment NAME" in refused.stderr
    assert len(jsonl(tmp_path)) == 3
    aionas("run", "tiny.py", "--max-models", "2", "--experiment", "wider", cwd=tmp_path)
    # Two experiments now: history and plot ask which one, and list them.
    ambiguous = aionas("history", cwd=tmp_path, check=False)
    assert ambiguous.returncode == 2
    assert "holds 2 experiments (tiny, wider)" in ambiguous.stderr
    assert "--experiment NAME" in ambiguous.stderr
    assert aionas("plot", "-o", "c.png", cwd=tmp_path, check=False).returncode == 2
    assert len(jsonl(tmp_path, "--experiment", "tiny")) == 3
    assert {i["experiment"] for i in jsonl(tmp_path, "--experiment", "wider")} == {"wider"}
    aionas("plot", "--experiment", "wider", "-o", "w.png", cwd=tmp_path)
    table = aionas("experiments", cwd=tmp_path).stdout
    assert "tiny" in table
    assert "wider" in table
    missing = aionas("history", "--experiment", "nope", cwd=tmp_path, check=False)
    assert missing.returncode == 2
    assert "holds no experiment 'nope'" in missing.stderr


# ------------------------------------------------------------------ the small things


def test_version_help_and_csv(tmp_path: Path) -> None:
    import aionas as package

    assert aionas("--version", cwd=tmp_path).stdout.strip() == f"aionas {package.__version__}"
    run_help = " ".join(aionas("run", "--help", cwd=tmp_path).stdout.split())
    for text in ("default: random", "default: 20", "default: ./aionas.db", "default: 0"):
        assert text in run_help
    history_help = " ".join(aionas("history", "--help", cwd=tmp_path).stdout.split())
    assert "highest or the lowest" in history_help
    (tmp_path / "tiny.py").write_text(TINY)
    aionas("run", "tiny.py", "--strategy", "grid", "--max-models", "3", cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(aionas("history", "--csv", cwd=tmp_path).stdout)))
    assert len(rows) == 3
    assert {"id", "status", "metric", "params_x", "params_act"} <= set(rows[0])


def test_a_piped_table_is_never_cut_and_failed_rows_show_their_error(tmp_path: Path) -> None:
    (tmp_path / "wide.py").write_text(
        textwrap.dedent(
            """
            from aionas.space import Choice

            space = {"a_rather_long_parameter_name": Choice(["a_rather_long_value_" * 3, "x"])}

            def evaluate(params):
                if params["a_rather_long_parameter_name"] == "x":
                    raise ValueError("the loss diverged")
                return 1.0
            """
        )
    )
    aionas("run", "wide.py", "--strategy", "grid", "--max-models", "2", cwd=tmp_path)
    table = aionas("history", cwd=tmp_path).stdout
    assert "a_rather_long_value_" * 3 in table
    assert "ValueError: the loss diverged" in table


# ------------------------------------------------------------------ resume determinism

#: A deterministic objective; with a file ``hold`` present, the 9th run waits for ``go``.
STEADY = textwrap.dedent(
    """
    import os, threading
    import aionas
    from aionas.space import Choice, Float, Int

    space = {"x": Float(0.0, 1.0), "n": Int(0, 50), "act": Choice(["relu", "tanh", "gelu"])}

    def evaluate(params):
        with open("runs", "a") as runs:
            runs.write("run\\n")
        with open("runs") as runs:
            nth = len(runs.readlines())
        score = params["x"] * (1 + params["n"] % 7) + (0.5 if params["act"] == "tanh" else 0)
        for epoch in range(2):
            while nth == 9 and os.path.exists("hold") and not os.path.exists("go"):
                threading.Event().wait(0.01)
            aionas.report_intermediate_result(score * (epoch + 1) / 2)
        return score
    """
)


@pytest.mark.parametrize("strategy", ["random", "evolution", "grid"])
def test_an_interrupted_and_resumed_run_continues_the_same_sequence(
    tmp_path: Path, strategy: str
) -> None:
    steady = STEADY if strategy != "grid" else STEADY.replace("Float(0.0, 1.0)", "Choice([0.1])")
    budget = "16" if strategy != "grid" else "12"
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    for folder in (straight, stopped):
        folder.mkdir()
        (folder / "steady.py").write_text(steady)
    command = ("run", "steady.py", "--strategy", strategy, "--max-models", budget)
    aionas(*command, "--seed", "7", cwd=straight)

    (stopped / "hold").touch()
    with running(stopped, *command, "--seed", "7") as p:
        assert p.stdout is not None
        assert p.stderr is not None
        read_until(p.stdout, "start  #9")  # it waits in its first epoch
        p.send_signal(signal.SIGINT)
        read_until(p.stderr, "stopping (Ctrl+C)")
        (stopped / "go").touch()
        assert p.wait() == 130
    assert jsonl(stopped, "--status", "interrupted")[0]["id"] == 9
    aionas(*command, cwd=stopped)  # no --seed: the experiment remembers 7

    def sequence(folder: Path) -> list[tuple[object, object, object]]:
        items = sorted(jsonl(folder), key=lambda item: int(str(item["id"])))
        return [(item["id"], item["params"], item["metric"]) for item in items]

    assert len(sequence(straight)) == int(budget)
    assert sequence(stopped) == sequence(straight)


# ------------------------------------------------------------------ what a hostile user found


def test_closed_or_full_stdout_and_closed_stderr(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    aionas("run", "tiny.py", "--max-models", "3", cwd=tmp_path)
    command = " ".join(AIONAS)
    for redirect, code in (
        ("history >&-", 0),
        ("history --jsonl >&-", 0),
        ("experiments >&-", 0),
        ("history >/dev/full", 1),
        ("history --csv >/dev/full", 1),
        ("run tiny.py --max-models 5 >/dev/full", 0),
        ("run tiny.py --max-models 6 2>&- >&-", 0),
    ):
        result = subprocess.run(
            ["bash", "-c", f"{command} {redirect}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == code, (redirect, result.stderr)
        assert "Traceback" not in result.stderr, (redirect, result.stderr)
    assert len(jsonl(tmp_path)) == 6  # the runs went on without their output


def test_sigterm_before_the_search_starts_exits_143(tmp_path: Path) -> None:
    (tmp_path / "late.py").write_text(
        "import os, threading\n"
        "open('loading', 'w').close()\n"
        "while not os.path.exists('go'):  # a slow import\n"
        "    threading.Event().wait(0.01)\n" + TINY
    )
    with running(tmp_path, "run", "late.py") as p:
        assert p.stderr is not None
        while not (tmp_path / "loading").exists():
            assert p.poll() is None, p.stderr.read()
            threading.Event().wait(0.01)
        p.send_signal(signal.SIGTERM)
        errors = p.stderr.read()
        assert p.wait() == 143, errors
    assert "stopped outside the search; nothing was recorded" in errors
    assert "Traceback" not in errors


def test_a_killed_writer_never_leaves_a_model_training(tmp_path: Path) -> None:
    (tmp_path / "silent.py").write_text(SILENT)
    with running(tmp_path, "run", "silent.py", "--max-models", "3") as p:
        assert p.stdout is not None
        read_until(p.stdout, "start  #1")
        p.kill()  # SIGKILL: nothing can be cleaned up
        p.wait()
    (item,) = jsonl(tmp_path)
    assert (item["status"], item["reason"]) == ("interrupted", "crash")


def test_a_search_file_imports_its_neighbours_and_pickles_its_classes(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helper.py").write_text("def score(x):\n    return x / 10\n")
    (folder / "my.search-v2.py").write_text(
        textwrap.dedent(
            """
            import dataclasses, pickle
            import helper
            from aionas.space import Int

            space = {"x": Int(0, 5)}

            @dataclasses.dataclass
            class Box:
                x: int

            def evaluate(params):
                box = pickle.loads(pickle.dumps(Box(params["x"])))
                return helper.score(box.x)
            """
        )
    )
    result = aionas("run", "project/my.search-v2.py", "--max-models", "2", cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert {i["status"] for i in jsonl(tmp_path)} == {"trained"}


def test_another_file_of_the_same_name_or_a_changed_file_mode_is_refused(tmp_path: Path) -> None:
    for name, sign in (("a", ""), ("b", "-")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "search.py").write_text(
            TINY.replace("return score", f"return {sign}score")
        )
    aionas("run", "a/search.py", "--max-models", "2", cwd=tmp_path)
    other = aionas("run", "b/search.py", "--max-models", "4", cwd=tmp_path, check=False)
    assert other.returncode == 2
    assert "was run from" in other.stderr
    assert "--experiment NAME" in other.stderr
    named = aionas(
        "run", "b/search.py", "--max-models", "3", "--experiment", "search", cwd=tmp_path
    )
    assert "continues with 'b/search.py'" in named.stderr  # asked for on purpose
    (tmp_path / "a" / "search.py").write_text(TINY + '\nmode = "min"\n')
    refused = aionas(
        "run",
        "a/search.py",
        "--experiment",
        "search",
        "--max-models",
        "5",
        cwd=tmp_path,
        check=False,
    )
    assert refused.returncode == 2
    assert "the mode of 'a/search.py' is 'min'" in refused.stderr
    (tmp_path / "a" / "search.py").write_text(TINY + "\nmode = 3\n")
    bad = aionas("run", "a/search.py", "--experiment", "x", cwd=tmp_path, check=False)
    assert bad.returncode == 2
    assert "`mode` must be 'max' or 'min', got 3" in bad.stderr


def test_suggested_commands_can_be_pasted_and_bad_options_are_clear(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)
    out = aionas(
        "run", "tiny.py", "--max-models", "2", "--experiment", "with space", cwd=tmp_path
    ).stdout
    assert "aionas history --experiment 'with space'" in out
    assert len(jsonl(tmp_path, "--experiment", "with space")) == 2
    inf = aionas("run", "tiny.py", "--max-duration", "inf", cwd=tmp_path, check=False)
    assert inf.returncode == 2
    assert "finite number" in inf.stderr
    empty = aionas("history", "--experiment", "", cwd=tmp_path, check=False)
    assert empty.returncode == 2
    assert "non-empty name" in empty.stderr
    assert len(jsonl(tmp_path, "--status", "Trained")) == 2
    nowhere = aionas("plot", "-o", "no/such/dir/c.png", cwd=tmp_path, check=False)
    assert nowhere.returncode == 2
    assert "cannot write 'no/such/dir/c.png'" in nowhere.stderr
    assert "wrote curves.png" in aionas("plot", "-o", "curves", cwd=tmp_path).stdout
    assert (tmp_path / "curves.png").is_file()


def test_a_search_that_runs_out_of_points_says_so(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(TINY)  # 10 points
    out = aionas("run", "tiny.py", "--max-models", "50", cwd=tmp_path).stdout
    assert "the strategy proposed nothing more (every point of the space was tried)" in out
    assert len(jsonl(tmp_path)) == 10
    spent = aionas("run", "tiny.py", "--max-models", "10", cwd=tmp_path).stdout
    assert "proposed nothing more" not in spent  # the budget, not the space, ended it


# ------------------------------------------------------------------ --executor process

CRASHY = textwrap.dedent(
    """
    import ctypes, os
    import aionas
    from aionas.space import Int

    space = {"x": Int(0, 5)}

    def evaluate(params):
        aionas.report_intermediate_result(os.getpid())
        if params["x"] == 3:
            ctypes.string_at(0)  # a segfault, in the worker process only
        return params["x"]
    """
)


def test_models_run_in_worker_processes_and_a_crash_costs_one_model(tmp_path: Path) -> None:
    (tmp_path / "crashy.py").write_text(CRASHY)
    run = aionas(
        "run",
        "crashy.py",
        "--executor",
        "process",
        "--strategy",
        "grid",
        "--max-models",
        "6",
        cwd=tmp_path,
    )
    assert "killed by signal SIGSEGV" in run.stdout
    items = sorted(jsonl(tmp_path), key=lambda item: int(str(item["id"])))
    assert [i["status"] for i in items] == ["trained"] * 3 + ["failed"] + ["trained"] * 2
    assert "WorkerDiedError" in str(items[3]["error"])
    pids = {int(float(str(i["intermediates"][0]))) for i in items}  # type: ignore[index]
    assert os.getpid() not in pids
    assert len(pids) == 2  # one worker, reused; a fresh one after the crash


def test_a_second_ctrl_c_kills_a_deaf_model_in_its_worker_process(tmp_path: Path) -> None:
    rest = stop_twice(tmp_path, "--executor", "process", "--max-models", "3")
    assert "model #1 is given up and recorded Interrupted (its worker process is killed)" in rest
    assert "stopped: #1 ended Interrupted" in rest
    (item,) = jsonl(tmp_path)
    assert (item["status"], item["reason"]) == ("interrupted", "shutdown")


def test_the_process_executor_needs_an_importable_search_file(tmp_path: Path) -> None:
    (tmp_path / "my-search.py").write_text(TINY)
    refused = aionas("run", "my-search.py", "--executor", "process", cwd=tmp_path, check=False)
    assert refused.returncode == 2
    assert "rename it to a valid module name" in refused.stderr


def test_process_models_that_print_into_a_closed_pipe_go_on(tmp_path: Path) -> None:
    (tmp_path / "printer.py").write_text(
        TINY.replace("    return score", "    print(params)\n    return score")
    )
    result = subprocess.run(
        [
            "bash",
            "-c",
            " ".join([*AIONAS, "run printer.py --executor process --max-models 5 | head -2"]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [i["status"] for i in jsonl(tmp_path)] == ["trained"] * 5


def test_an_async_evaluate_is_refused_with_the_process_executor(tmp_path: Path) -> None:
    (tmp_path / "later.py").write_text(TINY.replace("def evaluate", "async def evaluate"))
    refused = aionas("run", "later.py", "--executor", "process", cwd=tmp_path, check=False)
    assert refused.returncode == 2
    assert "is async def" in refused.stderr
