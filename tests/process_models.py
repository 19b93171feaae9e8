"""Models for the process executor's tests: module level, so a worker process can import them.

Synchronisation across processes: a model announces that it runs by reporting an
intermediate metric (the test waits for that event), and a model waits for the
test by waiting for a file to appear (bounded, so nothing hangs).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path
from typing import Any

import aionas

#: How long a model waits for a file before giving up (a test that forgets it fails).
WAIT = 20.0


def wait_for_file(path: str, *, timeout: float = WAIT) -> None:
    """Return once ``path`` exists; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.002)


class Streamer(aionas.Model):
    """Reports 0..n-1; after the first, waits for the file ``params['go']``; final n."""

    def execute(self) -> None:
        n = self.params["n"]
        for i in range(n):
            aionas.report_intermediate_result(float(i))
            if i == 0:
                wait_for_file(self.params["go"])
        aionas.report_final_result(float(n))


class Many(aionas.Model):
    """Reports ``params['n']`` intermediate metrics as fast as it can, then a final one."""

    def execute(self) -> None:
        n = self.params["n"]
        for i in range(n):
            aionas.report_intermediate_result(i)
        aionas.report_final_result(float(n))


class Pid(aionas.Model):
    """Reports the worker's process id as its final metric (and sets an attribute)."""

    def execute(self) -> None:
        self.touched = True  # on the worker's copy only
        aionas.report_final_result(os.getpid())


def double(params: dict[str, Any]) -> float:
    """For a FunctionModel: returns twice ``params['x']`` (the final metric)."""
    return 2.0 * params["x"]


def reports_and_returns(params: dict[str, Any]) -> float:
    """Reports its own final metric, then returns another (which must be ignored)."""
    aionas.report_final_result(1.0)
    return 99.0


def _check_params(params: dict[str, Any]) -> None:
    if params["x"] > 5:
        raise ValueError(f"x={params['x']} is too large")


class Raiser(aionas.Model):
    """Reports once, then raises ValueError from a helper (a user frame)."""

    def execute(self) -> None:
        aionas.report_intermediate_result(0.5)
        _check_params(self.params)


class OddError(Exception):
    """An exception that pickles but cannot be unpickled (its __init__ takes two args)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"odd {code}: {detail}")


class RaisesOdd(aionas.Model):
    def execute(self) -> None:
        raise OddError(7, "cannot travel")


class Crash(aionas.Model):
    """Ends its worker process: ``params['how']`` is 'segfault', 'exit' or 'abort'."""

    def execute(self) -> None:
        aionas.report_intermediate_result(1.0)  # delivered although the process dies
        how = self.params["how"]
        if how == "segfault":
            ctypes.string_at(0)
        elif how == "exit":
            os._exit(self.params.get("code", 3))
        elif how == "abort":
            os.abort()


class Stubborn(aionas.Model):
    """Reports its pid, then sleeps without ever checking for a stop, until a file appears."""

    def execute(self) -> None:
        aionas.report_intermediate_result(os.getpid())
        wait_for_file(self.params["release"], timeout=self.params.get("timeout", WAIT))


class Cooperative(aionas.Model):
    """Reports its pid, then checks for a stop in a loop, as training code should."""

    def execute(self) -> None:
        aionas.report_intermediate_result(os.getpid())
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            aionas.check_cancelled()
            time.sleep(0.002)
        raise TimeoutError("never asked to stop")


class EnvReporter(aionas.Model):
    """Reports the worker's value of the environment variable ``params['name']``."""

    def execute(self) -> None:
        aionas.report_final_result(
            {"default": 1.0, "value": os.environ.get(self.params["name"], "<unset>")}
        )


class BadMetrics(aionas.Model):
    """Reports bad metrics, catches the errors at its own calls, and says which it got."""

    def execute(self) -> None:
        caught = []
        for metric in ("abc", {"loss": 1.0}, {"default": 1.0, "thing": object()}):
            try:
                aionas.report_intermediate_result(metric)
            except (ValueError, TypeError) as error:
                caught.append(type(error).__name__)
        aionas.report_final_result({"default": 2.0, "caught": caught})


class HoldsLock(aionas.Model):
    """An attribute that does not pickle: a lock."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.lock = threading.Lock()

    def execute(self) -> None:
        aionas.report_final_result(1.0)


class Forger(aionas.Model):
    """Sends a report tagged with the previous run's token, as a leftover would, then ends."""

    def execute(self) -> None:
        from aionas import _context
        from aionas.executors import _process_worker as protocol

        run: Any = _context.current_run.get()
        run._worker._send((protocol.REPORT, run.token - 1, 5.0, False))
        aionas.report_final_result(1.0)


_late_go = threading.Event()
_late_outcome: list[str] = []
_late_thread: list[threading.Thread] = []


class LateReporter(aionas.Model):
    """Leaves a thread behind that reports once the next model says so."""

    def execute(self) -> None:
        import contextvars

        context = contextvars.copy_context()  # the thread reports as this run

        def late() -> None:
            _late_go.wait(WAIT)
            try:
                aionas.report_intermediate_result(123.0)
            except aionas.ModelInterrupted:
                _late_outcome.append("interrupted")
            else:
                _late_outcome.append("sent")

        thread = threading.Thread(target=context.run, args=(late,))
        _late_thread.append(thread)
        thread.start()
        aionas.report_final_result(1.0)


class LateChecker(aionas.Model):
    """Lets the previous model's thread report, and reports what happened to it."""

    def execute(self) -> None:
        _late_go.set()
        for thread in _late_thread:
            thread.join(WAIT)
        aionas.report_final_result({"default": 1.0, "late": list(_late_outcome)})


class Spin(aionas.Model):
    """Pure-Python CPU work for ``params['seconds']`` (holds its interpreter's GIL)."""

    def execute(self) -> None:
        deadline = time.perf_counter() + self.params["seconds"]
        n = 0
        while time.perf_counter() < deadline:
            for i in range(1000):
                n += i * i
        aionas.report_final_result(float(n % 7))


class Noop(aionas.Model):
    def execute(self) -> None:
        aionas.report_final_result(1.0)


def _rebuild_slowly(message: str, release: str) -> SlowToRestore:
    wait_for_file(release)  # the parent unpickles it only once the test says so
    return SlowToRestore(message, release)


class SlowToRestore(Exception):
    """An error the parent cannot restore until a file appears."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_slowly, self.args)


class EndsWhileKilled(aionas.Model):
    """Reports its pid, then ends by itself with an error the parent restores slowly."""

    def execute(self) -> None:
        aionas.report_intermediate_result(os.getpid())
        raise SlowToRestore("ended by itself", self.params["release"])


def _explode() -> None:
    raise SystemExit("raised while the parent unpickles the error")


class Bomb(Exception):
    """Unpickling it raises SystemExit (in the parent)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_explode, ())


class RaisesBomb(aionas.Model):
    def execute(self) -> None:
        raise Bomb()


class LeavesThings(aionas.Model):
    """Starts a non-daemon thread and a subprocess, reports the subprocess's pid, returns."""

    def execute(self) -> None:
        import subprocess

        threading.Thread(target=time.sleep, args=(60,)).start()
        child = subprocess.Popen(["sleep", "60"])
        aionas.report_intermediate_result(child.pid)
        if self.params.get("stubborn"):
            wait_for_file(self.params["release"])
