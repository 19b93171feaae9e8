"""A search that a test kills: ``python crash_search.py DB MODE``.

It runs on a journal at DB and prints every event its subscriber receives, one
line each (``seq type model_id``), flushed, so the test knows what was seen.
MODE ``steady``: 200 models, each reporting 20 metrics with a short pause.
MODE ``hang``: one quick model, then one that runs until killed, then one queued.
"""

from __future__ import annotations

import sys
import threading

import anyio

import aionas


class Steady(aionas.Model):
    def execute(self) -> None:
        for step in range(20):
            aionas.report_intermediate_result(step + self.params["i"])
            threading.Event().wait(0.0005)
        aionas.report_final_result(float(self.params["i"]))


class Hang(aionas.Model):
    def execute(self) -> None:
        aionas.report_intermediate_result(1.0)
        while True:
            aionas.check_cancelled()
            threading.Event().wait(0.01)


async def main(path: str, mode: str) -> None:
    journal = aionas.SqliteJournal(path)
    async with aionas.SequentialExecutionEngine(journal=journal) as engine:
        async with engine.subscribe() as events:
            if mode == "steady":
                await engine.submit_models(*(Steady({"i": i}) for i in range(200)))
            else:
                await engine.submit_models(Steady({"i": 0}), Hang({"i": 1}), Steady({"i": 2}))
            async for event in events:
                print(event.seq, event.event_type.value, event.model.model_id, flush=True)


if __name__ == "__main__":
    try:
        anyio.run(main, sys.argv[1], sys.argv[2])
    except KeyboardInterrupt:
        print("interrupted", flush=True)
