"""Ctrl+C (SIGINT) stops a search cleanly: the running model ends Interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading, anyio, aionas

    class Forever(aionas.Model):
        def execute(self):
            step = 0
            while True:
                step += 1
                aionas.report_intermediate_result(step)
                threading.Event().wait(0.005)

    def show(event):
        print(type(event).__name__, event.model.params["i"], getattr(event, "reason", "-"),
              flush=True)

    async def main():
        async with aionas.SequentialExecutionEngine() as engine:
            engine.register_model_event_callback("training_start", show)
            engine.register_model_event_callback("training_end", show)
            await engine.submit_models(Forever({"i": 1}), Forever({"i": 2}))
            await engine.wait_models()

    try:
        anyio.run(main, backend=sys.argv[1])
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigint_interrupts_the_running_model_and_exits(backend: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().split() == ["TrainingStartEvent", "1", "-"]
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert out.splitlines() == [
        "TrainingEndEvent 2 shutdown",
        "TrainingEndEvent 1 shutdown",
        "KeyboardInterrupt",
    ], out
