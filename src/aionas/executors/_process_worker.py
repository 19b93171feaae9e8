"""The worker process of a :class:`~aionas.executors.ProcessExecutor` (the child side).

:func:`main` runs in the worker process: it runs the models its parent sends, one
after another, each with the trial API bound to a :class:`_ChildRun` (a per-run
handle, as the thread executor binds a :class:`~aionas.RunHandle`). What the model
reports is checked here, with the engine's own rules, so a bad metric raises at
the model's own call; then it is sent to the parent, which hands it to the engine.

The protocol (each message a tuple; every message about a run carries its
``token``, a number the parent gives each run, so nothing a run sends can be
taken for another's):

- parent -> child, on ``conn``: ``(RUN, token, pickled model)``; ``(EXIT,)`` to
  stop once idle.
- parent -> child, on ``control``: ``(STOP, token, reason)``: the run was asked to stop.
- child -> parent, on ``conn``: ``(READY, pid)`` once, at start;
  ``(REPORT, token, metric, final)``; ``(END, token, outcome)``, where ``outcome``
  is None (``execute()`` returned) or ``(pickled error or None, type name,
  message, traceback text)``.

Threads of a worker: the main thread reads ``conn`` and runs the models; a
listener thread reads ``control`` and records the latest stop request in
``_Worker.stop`` (one reference, replaced whole: read without a lock); any thread
of a model may report. Sends on ``conn`` and ``_ChildRun.finished`` are guarded
by ``_Worker.send_lock``, so nothing of a run is sent after its end.

When the parent goes away (its end of ``control`` closes without an ``EXIT``),
the worker exits at once: nobody is left to report to, and it must not be
orphaned. Ctrl+C (SIGINT) is ignored here: the engine in the parent decides what
a Ctrl+C stops, and tells the worker.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import signal
import sys
import threading
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from .._context import current_run
from ..events import error_traceback
from ..exceptions import ModelInterrupted
from ..metrics import check_storable
from ..model import Model

__all__ = ["END", "EXIT", "READY", "REPORT", "RUN", "STOP", "Outcome", "main"]

RUN, EXIT, STOP, READY, REPORT, END = range(6)

#: How an ``execute()`` that raised is sent back: (pickled error or None, type
#: name, message, traceback text).
Outcome = tuple[bytes | None, str, str, str]

#: The exit code of a worker whose parent has gone.
_ORPHANED = 75


def main(conn: Connection, control: Connection, environment: Mapping[str, str]) -> None:
    """The worker process: set ``environment``, then run models until told to exit."""
    os.environ.update(environment)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # its own process group: a kill reaches the model's
        os.setpgid(0, 0)  # own subprocesses too (the parent signals the whole group)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None:
            setattr(sys, name, _ReaderMayLeave(stream))
    with contextlib.suppress(Exception):  # (no stderr, say)
        faulthandler.enable()  # a crash prints the Python stack of every thread to stderr
    _Worker(conn, control).serve()


class _ReaderMayLeave:
    """A text stream that, once its reader has gone (``aionas run ... | head``), sends
    what is left to ``/dev/null`` instead of failing the model that prints."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _gone(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _ChildRun:
    """One run of one model, as the trial API sees it inside the worker.

    Thread-safe, like :class:`~aionas.RunHandle`: ``report`` raises
    :class:`~aionas.ModelInterrupted` once the parent has asked the run to stop,
    and once the run has ended.
    """

    __slots__ = ("_worker", "finished", "model", "token")

    def __init__(self, worker: _Worker, token: int, model: Model) -> None:
        self._worker = worker
        self.token = token
        self.model = model
        #: True once ``execute()`` has returned (under ``send_lock``).
        self.finished = False

    @property
    def cancel_requested(self) -> bool:
        """True once the run has been asked to stop (or has ended)."""
        return self.finished or self._worker.stop_reason(self.token) is not None

    def report(self, metric: Any, *, final: bool = False) -> None:
        """Check ``metric`` as the engine does, and send it to the parent.

        :raises ValueError: for a metric that is not a number or a dict with ``'default'``.
        :raises TypeError: for a dict metric that JSON cannot hold.
        :raises ModelInterrupted: once the run has been asked to stop, or has ended.
        """
        self._worker.report(self, metric, final)

    def report_intermediate(self, metric: Any) -> None:
        self._worker.report(self, metric, False)

    def report_final(self, metric: Any) -> None:
        self._worker.report(self, metric, True)

    def check_cancelled(self) -> None:
        """:raises ModelInterrupted: if the run has been asked to stop or has ended."""
        if self.finished:
            raise ModelInterrupted("this model's run has already ended; stop its work")
        reason = self._worker.stop_reason(self.token)
        if reason is not None:
            raise ModelInterrupted(reason)


class _Worker:
    """The worker's state: its two connections and the latest stop request."""

    def __init__(self, conn: Connection, control: Connection) -> None:
        self.conn = conn
        self.control = control
        self.send_lock = threading.Lock()
        #: The latest stop request, ``(token, reason)``: runs up to ``token`` must stop.
        self.stop: tuple[int, str] | None = None

    def serve(self) -> None:
        """Run models as the parent sends them, until it says exit (or goes away)."""
        threading.Thread(target=self._listen, name="aionas stop listener", daemon=True).start()
        self._send((READY, os.getpid()))
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return  # the parent has gone
            if message[0] == EXIT:
                # At once: a thread or child process a model left behind must not hold
                # the exit up (the parent cleans the process group up after it).
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(0)
            self._run(message[1], message[2])
            del message

    def stop_reason(self, token: int) -> str | None:
        stop = self.stop
        return stop[1] if stop is not None and stop[0] >= token else None

    def _listen(self) -> None:
        """Record stop requests as they come; exit the process if the parent goes away."""
        while True:
            try:
                _, token, reason = self.control.recv()
            except (EOFError, OSError):
                os._exit(_ORPHANED)  # the parent has gone: nobody to report to
            self.stop = (token, reason)

    def _run(self, token: int, data: bytes) -> None:
        """Run one model to its end and send that end, whatever happens."""
        outcome: Outcome | None = None
        try:
            model = _load(data)
        except BaseException as error:  # sent back as the model's failure
            self._end(None, token, _describe(error))
            return
        run = _ChildRun(self, token, model)
        context = current_run.set(run)
        try:
            run.check_cancelled()  # stopped before it was read: do not start it
            model.execute()
        except BaseException as error:  # the model's own error, sent as its outcome
            outcome = _describe(error)
        finally:
            current_run.reset(context)
        self._end(run, token, outcome)

    def _end(self, run: _ChildRun | None, token: int, outcome: Outcome | None) -> None:
        with self.send_lock:
            if run is not None:
                run.finished = True  # nothing of it is sent after this
            self._send_locked((END, token, outcome))

    def report(self, run: _ChildRun, metric: Any, final: bool) -> None:
        metrics = run.model.metrics
        value = metric if type(metric) is float else metrics._check(metric)  # ValueError
        if type(metric) is not float and type(metric) is not int:
            check_storable(metric)  # TypeError, as with any executor
        with self.send_lock:
            run.check_cancelled()
            try:
                self._send_locked((REPORT, run.token, metric, final))
            except (pickle.PicklingError, TypeError, AttributeError) as error:
                raise TypeError(
                    f"metric {metric!r} could not be sent to the engine's process ({error}); "
                    "report numbers, or dicts and lists of them"
                ) from None
        # The model's own copy keeps its metrics too (FunctionModel reads its final).
        if final:
            metrics._final = value
        else:
            metrics.intermediates.append(value)

    def _send(self, message: tuple[Any, ...]) -> None:
        with self.send_lock:
            self._send_locked(message)

    def _send_locked(self, message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)  # may raise: nothing sent
        try:
            self.conn.send_bytes(data)
        except OSError:
            os._exit(_ORPHANED)  # the parent has gone (or is killing this process)


def _load(data: bytes) -> Model:
    """Unpickle a model sent by the parent, with an error that says what to do."""
    try:
        model = pickle.loads(data)
    except Exception as error:
        raise TypeError(
            f"the worker process could not unpickle the model ({type(error).__name__}: "
            f"{error}); define the model's class at module level of a module that the "
            "worker can import (not in an interactive session)"
        ) from error
    if not isinstance(model, Model):  # never: the parent sends models
        raise TypeError(f"expected a model, got {type(model).__name__}")
    return model


def _describe(error: BaseException) -> Outcome:
    """``error`` as it travels to the parent: pickled if it can be, and as text."""
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    try:
        message = str(error)
    except Exception:
        message = "(str() of the exception failed)"
    try:
        pickled: bytes | None = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pickled = None
    return pickled, name, message, error_traceback(error)
