"""The process executor: each model runs in a reused worker process.

One *lane* (the only one for now; lanes will hold one each) owns one worker
process at a time and one supervisor thread. The worker is started when the
executor opens and serves model after model; it is replaced when it dies, when
it is killed after ``cancel_grace``, and after ``max_models_per_worker`` models.
The supervisor thread does everything that may block: it starts and reaps
workers, pickles and sends each model, and reads what the worker sends back,
handing reports to ``run.report`` (which may wait for room: backpressure reaches
the worker through the pipe) and the end to ``run.finish``. The engine's calls
(``start``, ``cancel``, ``kill``) only record what they want under ``_lock`` and
wake the supervisor through a non-blocking socket; ``kill`` also sends SIGTERM.
The worker side is :mod:`aionas.executors._process_worker`.

A worker that dies while running a model is seen by the supervisor at once (its
sentinel); one that dies while idle, when the next model is sent to it (its end
of the pipe is closed), and that model goes to a fresh worker. A worker exits by
itself if this process goes away; one never closed is terminated at exit.

Shared state of a lane (every field below is guarded by ``_Lane._lock``, which is
never held while calling into a run or waiting for anything; the engine calls
``start``/``cancel`` under its own lock, so the order is engine lock, then this):

=====================  ===============================  ============================
field                  written by                       read by
=====================  ===============================  ============================
``_next``              ``start`` (any thread); the      the supervisor
                       supervisor (takes it); ``kill``
``_current``           the supervisor                   ``kill`` (loop)
``_worker``            the supervisor                   ``kill``, ``statistics``
``_Worker.killed``     ``kill`` (loop)                  the supervisor
``_Worker.reaping``    the supervisor                   ``kill`` (no signal once set)
``_closing``           ``aclose`` (loop)                the supervisor
counters               the supervisor; ``kill``         ``statistics`` (any)
=====================  ===============================  ============================

The supervisor alone uses a worker's connections (so sends need no lock), its
``Process`` object (except ``kill``'s SIGTERM, sent only while ``reaping`` is
False, so never to a reaped pid), ``_Worker.served`` and the run tokens.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import reprlib
import selectors
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import anyio

from .._checks import check_positive
from ..exceptions import ModelInterrupted, WorkerDiedError
from . import _process_worker as protocol
from ._base import Executor, RunHandle

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ..model import Model

__all__ = ["ProcessExecutor", "ProcessExecutorStatistics"]

_logger = logging.getLogger("aionas.engine")

#: Seconds a worker asked to exit (or whose connection broke) may take, before SIGTERM.
_EXIT_WAIT = 5.0
#: Seconds a worker may take to die after SIGTERM, before SIGKILL.
_TERM_WAIT = 1.0

Placement = Callable[[int], Mapping[str, str]]

# What a supervisor's wait found ready (selector keys' data, or-ed together).
_CONN, _DEAD, _WAKE = 1, 2, 4


@dataclass(frozen=True, slots=True)
class ProcessExecutorStatistics:
    """Counts of a :class:`ProcessExecutor`'s worker processes, at one moment."""

    #: Worker processes started (one at open, then one per replacement).
    workers_started: int
    #: Workers terminated because a model ignored a stop request (``cancel_grace``,
    #: ``shutdown(force=True)``).
    workers_killed: int
    #: Workers that died by themselves (a crash, ``os._exit``, the OOM killer).
    workers_died: int
    #: Messages from a run that was no longer the one running, dropped unread.
    dropped_reports: int
    #: The process id of the current worker, or None between workers.
    pid: int | None


class ProcessExecutor(Executor):
    """Runs each model in a worker process, reused from one model to the next.

    A crash in ``execute()`` (a segmentation fault, ``os._exit``, the system's
    out-of-memory killer) costs one model, which ends ``Failed`` with a
    :class:`~aionas.WorkerDiedError`; the next model gets a fresh worker. A model
    that ignores a stop request is killed after the engine's ``cancel_grace`` (a
    real kill, which a thread cannot get), and the event loop never shares a GIL
    with the model.

    Models travel by :mod:`pickle`: a model's class (and any function it holds)
    must be defined at module level of an importable module, and its attributes
    must pickle (no lambdas, open files, locks; create those inside ``execute()``).
    :meth:`check` says so at submission. The model runs on a *copy*: what it
    reports reaches the model in your process as usual (metrics, status, error),
    but attributes it sets in ``execute()`` are not sent back. A worker keeps its
    module-level state (imports, caches) from one model to the next; Ctrl+C is
    left to the engine (workers ignore SIGINT), and your main module is imported
    by each worker, so it must guard what it runs with ``if __name__ == "__main__":``.

    :param context: how worker processes start: ``"spawn"`` (the default: a fresh
        interpreter, which imports your main module) or ``"forkserver"`` (POSIX:
        forked from a server process that lives as long as yours; call
        ``multiprocessing.set_forkserver_preload(["__main__", "aionas", ...])``
        first, and a worker starts in milliseconds). ``"fork"`` is refused:
        forking a process that has threads can deadlock the child.
    :param placement: ``placement(lane)`` returns environment variables set in a
        worker before any model runs in it (``lane`` is 0 for now), e.g.
        ``lambda lane: {"CUDA_VISIBLE_DEVICES": str(lane)}``. Called in this
        process, in the executor's thread, each time a worker starts. Modules that
        your main module imports at top level are imported before it is applied.
    :param max_models_per_worker: start a fresh worker after this many models, as
        ``max_tasks_per_child`` does in ``concurrent.futures`` (None: reuse
        forever; 1: a clean process for every model, at the cost of a start each).
    :raises ValueError: for ``context="fork"`` or an unknown context.
    """

    capacity = 1

    def __init__(
        self,
        *,
        context: str = "spawn",
        placement: Placement | None = None,
        max_models_per_worker: int | None = None,
    ) -> None:
        if context == "fork":
            raise ValueError(
                "context='fork' is refused: the engine's process has threads (the event "
                "loop's, the executor's), and forking a process with threads can copy a lock "
                "that another thread holds, so the worker may deadlock; use 'spawn' (the "
                "default) or 'forkserver'"
            )
        if context not in ("spawn", "forkserver"):
            raise ValueError(f"context must be 'spawn' or 'forkserver', got {context!r}")
        if placement is not None and not callable(placement):
            raise TypeError(
                f"placement must be a function of the lane number returning environment "
                f"variables, or None; got {placement!r}"
            )
        check_positive("max_models_per_worker", max_models_per_worker, integer=True)
        self.context = context
        self.placement = placement
        self.max_models_per_worker = max_models_per_worker
        self._context = multiprocessing.get_context(context)
        self._lane: _Lane | None = None  # from open() on (lanes will hold one each)

    async def open(self, tasks: TaskGroup) -> None:
        """Start the worker process (off the event loop) and wait until it is ready.

        :raises RuntimeError: if the worker could not start (its error output says why).
        :raises TypeError: if ``placement`` does not return a mapping of strings.
        """
        if self._lane is not None:
            raise RuntimeError("a ProcessExecutor serves one engine, once; create a new one")
        self._lane = _Lane(0, self._context, self.placement, self.max_models_per_worker)
        await self._lane.open()

    def check(self, model: Model) -> None:
        """Refuse a model that cannot be pickled, naming its class and what to do.

        :raises TypeError: if ``pickle.dumps(model)`` fails, or its class lives in a
            ``__main__`` a worker cannot import (``python -c``, a notebook, stdin).
        """
        _check_importable(type(model))
        _pickled(model)

    def start(self, run: RunHandle) -> None:
        if self._lane is None:
            raise RuntimeError("ProcessExecutor.start() called before open()")
        self._lane.start(run)

    def cancel(self, run: RunHandle) -> None:
        if self._lane is not None:
            self._lane.cancel(run)

    def kill(self, run: RunHandle) -> bool:
        """Terminate the worker running ``run`` (SIGTERM now, SIGKILL if it lingers).

        The next run gets a fresh worker. Always True.
        """
        return self._lane is None or self._lane.kill(run)

    async def aclose(self) -> None:
        """Ask the worker to exit once idle, and wait for it and the supervisor thread.

        A worker that does not exit within a few seconds is terminated; none is
        left running, and none is left unreaped.
        """
        if self._lane is not None:
            await self._lane.aclose()

    def statistics(self) -> ProcessExecutorStatistics:
        """Counts of worker processes started, killed and died, and reports dropped."""
        if self._lane is None:
            return ProcessExecutorStatistics(0, 0, 0, 0, None)
        return self._lane.statistics()

    def __repr__(self) -> str:
        return f"ProcessExecutor(context={self.context!r})"


class _Worker:
    """One worker process, with the parent's ends of its two connections."""

    __slots__ = ("conn", "control", "killed", "pid", "process", "reaping", "selector", "served")

    def __init__(self, process: BaseProcess, conn: Connection, control: Connection) -> None:
        self.process = process
        self.conn = conn  # duplex: runs out, reports and ends back
        self.control = control  # stop requests out
        #: Waits for a message, the process's end, or a wake (the supervisor's).
        self.selector = selectors.DefaultSelector()
        self.selector.register(conn, selectors.EVENT_READ, _CONN)
        self.selector.register(process.sentinel, selectors.EVENT_READ, _DEAD)
        self.pid = process.pid
        self.served = 0
        self.killed = False
        self.reaping = False


class _Closing(Exception):
    """The lane was closed while a worker was starting."""


class _Lane:
    """One lane: one worker process at a time, and the supervisor thread that owns it."""

    def __init__(
        self,
        index: int,
        context: Any,
        placement: Placement | None,
        max_models: int | None,
    ) -> None:
        self.index = index
        self._context = context
        self._placement = placement
        self._max_models = max_models
        self._lock = threading.Lock()
        self._next: RunHandle | None = None
        self._current: RunHandle | None = None
        self._worker: _Worker | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._supervisor = 0  # the supervisor thread's ident
        self._ready = threading.Event()  # the first worker started (or could not)
        self._start_error: BaseException | None = None
        self._token = 0
        self._workers_started = 0
        self._workers_killed = 0
        self._workers_died = 0
        self._dropped = 0
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)

    # ------------------------------------------------------------------ the engine's side

    async def open(self) -> None:
        thread = threading.Thread(
            target=self._supervise, name=f"aionas process lane {self.index}", daemon=True
        )
        self._thread = thread
        thread.start()
        await anyio.to_thread.run_sync(self._ready.wait)
        if self._start_error is not None and not isinstance(self._start_error, _Closing):
            raise self._start_error

    def start(self, run: RunHandle) -> None:
        with self._lock:
            if self._thread is None or self._closing:
                raise RuntimeError("ProcessExecutor.start() called before open() or after aclose()")
            self._next = run
        if threading.get_ident() != self._supervisor:
            self._wake()

    def cancel(self, run: RunHandle) -> None:
        self._wake()  # the supervisor sees run.cancel_requested and tells the worker

    def kill(self, run: RunHandle) -> bool:
        with self._lock:
            if self._next is run:
                self._next = None  # never sent: nothing to kill
                return True
            worker = self._worker
            if self._current is not run or worker is None:
                return True  # it has already left the worker
            worker.killed = True
            self._workers_killed += 1
            if not worker.reaping:  # not yet reaped: its pid is still ours to signal
                _signal_group(worker.process, signal.SIGTERM)
        self._wake()
        _logger.warning(
            "terminated the worker process (pid %s) of %r: it was asked to stop and had not "
            "(after cancel_grace, or a forced shutdown); the next model gets a fresh worker",
            worker.pid,
            run.model,
        )
        return True

    async def aclose(self) -> None:
        with self._lock:
            self._closing = True
        self._wake()
        thread = self._thread
        if thread is not None:
            await anyio.to_thread.run_sync(thread.join)
        self._wake_in.close()
        self._wake_out.close()

    def statistics(self) -> ProcessExecutorStatistics:
        with self._lock:
            worker = self._worker
            return ProcessExecutorStatistics(
                workers_started=self._workers_started,
                workers_killed=self._workers_killed,
                workers_died=self._workers_died,
                dropped_reports=self._dropped,
                pid=None if worker is None else worker.pid,
            )

    def _wake(self) -> None:
        """Wake the supervisor (any thread, never blocks; wakes coalesce)."""
        with contextlib.suppress(OSError):  # full (a wake is pending) or closed
            self._wake_out.send(b"\0")

    def _drain_wakes(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_in.recv(4096):
                pass

    # ------------------------------------------------------------------ the supervisor thread

    def _supervise(self) -> None:
        """Keep a worker and run what ``start`` hands over, until closed."""
        self._supervisor = threading.get_ident()
        try:
            try:
                self._replace_worker()
            except BaseException as error:
                self._start_error = error
            self._ready.set()
            while (run := self._take()) is not None:
                try:
                    self._serve(run)
                except Exception as error:  # a bug here must not leave the run hanging
                    _logger.critical("the process executor failed running %r", run.model)
                    self._discard_worker()
                    run.finish(error)
        except BaseException:
            _logger.exception("the process executor's supervisor thread failed")
            raise
        finally:
            self._ready.set()
            self._retire_worker()

    def _take(self) -> RunHandle | None:
        """Wait for the next run; None once closed.

        An idle worker that dies is noticed when the next run is sent to it (see
        :meth:`_serve`), not here: one path, and the run goes to a fresh worker.
        """
        while True:
            with self._lock:
                run = self._next
                if run is not None:
                    self._next = None
                    self._current = run
                    return run
                if self._closing:
                    return None
            multiprocessing.connection.wait([self._wake_in])
            self._drain_wakes()

    def _serve(self, run: RunHandle) -> None:
        """Run ``run`` in the worker: send it, relay its reports, report its end."""
        try:
            data = _pickled(run.model)
        except TypeError as error:
            self._leave(run, error)
            return
        self._token += 1
        token = self._token
        payload = pickle.dumps((protocol.RUN, token, data), pickle.HIGHEST_PROTOCOL)
        retried = False
        while True:
            try:
                worker = self._worker or self._replace_worker()
                with self._lock:
                    killed = worker.killed
                if killed:  # terminated for an earlier run: never send it another
                    self._reap(worker)
                    worker = self._replace_worker()
            except Exception as error:  # no worker could be started: the run fails with why
                self._leave(run, error)
                return
            if run.cancel_requested:  # stopped (or killed) before it was sent: not started
                self._leave(run, None)
                return
            if _send(worker, payload):
                break
            # Its end of the pipe is closed: it died while idle (or kill() has just
            # terminated it), and the model never reached it.
            exitcode = self._reap(worker)
            with self._lock:
                killed = worker.killed
            if killed:
                self._leave(run, None, finish=False)  # the engine ended it when it killed it
                return
            self._count_death()
            if retried:  # a fresh worker died at once too: give up on this run
                self._leave(run, WorkerDiedError(_describe(run), exitcode))
                return
            retried = True
            _logger.warning("the idle worker process (pid %s) died (%s)", worker.pid, exitcode)
        del data, payload
        conn = worker.conn
        told = False
        select = worker.selector.select
        while True:
            if not told and run.cancel_requested:
                told = True
                with contextlib.suppress(OSError):  # if it has died, that is seen below
                    worker.control.send((protocol.STOP, token, run.cancel_reason or "shutdown"))
            with self._lock:
                killed = worker.killed
            if killed:
                self._reap(worker)
                self._leave(run, None, finish=False)  # the engine ended it when it killed it
                self._try_replace_worker()
                return
            ready = 0
            for key, _ in select():
                ready |= key.data
            if ready & _WAKE:
                self._drain_wakes()
            if not ready & _CONN:
                if ready & _DEAD:
                    self._worker_died(worker, run)
                    return
                continue
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self._worker_died(worker, run)
                return
            if self._handle(run, token, message):
                with self._lock:
                    killed = worker.killed  # kill() may land between its END and our _leave
                if killed:
                    self._reap(worker)
                    self._try_replace_worker()
                    return
                worker.served += 1
                if self._max_models is not None and worker.served >= self._max_models:
                    self._retire_worker()
                    self._try_replace_worker()
                return

    def _handle(self, run: RunHandle, token: int, message: tuple[Any, ...]) -> bool:
        """Act on one message of the worker's; True if it ended the run."""
        kind = message[0]
        if message[1] != token:  # from a run that is no longer the current one
            with self._lock:
                self._dropped += 1
            return False
        if kind == protocol.REPORT:
            try:
                run.report(message[2], final=message[3])
            except ModelInterrupted:
                pass  # the run was asked to stop: the serving loop tells the worker
            except Exception:  # the worker checked it already: never expected
                _logger.exception("a report of %r could not be recorded", run.model)
            return False
        if kind == protocol.END:
            self._leave(run, _restore(message[2]))
            return True
        _logger.error("unexpected message %r from the worker of %r", kind, run.model)
        return False

    def _leave(self, run: RunHandle, error: BaseException | None, *, finish: bool = True) -> None:
        """``run`` is no longer in the worker; report its end (unless it was killed)."""
        with self._lock:
            self._current = None
        if finish:
            run.finish(error)

    def _worker_died(self, worker: _Worker, run: RunHandle) -> None:
        """The worker died (or its connection broke) with ``run`` in it.

        Everything it sent before dying has been read: its connection was
        readable no later than its sentinel.
        """
        exitcode = self._reap(worker)
        with self._lock:
            killed = worker.killed
        if killed:
            self._leave(run, None, finish=False)  # the engine ended it when it killed it
        else:
            self._count_death()
            self._leave(run, WorkerDiedError(_describe(run), exitcode))
        self._try_replace_worker()

    def _count_death(self) -> None:
        with self._lock:
            self._workers_died += 1

    # ------------------------------------------------------------------ workers (supervisor)

    def _try_replace_worker(self) -> None:
        """Start the next worker now, so the next model need not wait; log a failure."""
        with self._lock:
            if self._closing and self._next is None:
                return
        try:
            self._replace_worker()
        except _Closing:
            pass
        except Exception:  # the next run tries again, and fails with the reason
            _logger.exception("could not start a worker process")

    def _replace_worker(self) -> _Worker:
        """Start a worker process and wait until it is ready.

        :raises _Closing: if the lane was closed meanwhile.
        :raises RuntimeError: if the process exited before it was ready.
        """
        environment = self._environment()
        conn, child_conn = self._context.Pipe(duplex=True)
        control_in, control = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=protocol.main,
            args=(child_conn, control_in, environment),
            name=f"aionas worker (lane {self.index})",
        )
        try:
            process.start()
        except BaseException:
            conn.close()
            control.close()
            raise
        finally:
            child_conn.close()
            control_in.close()
        worker = _Worker(process, conn, control)
        worker.selector.register(self._wake_in, selectors.EVENT_READ, _WAKE)
        _live.add(process)
        with self._lock:
            self._worker = worker
            self._workers_started += 1
        try:
            while True:
                ready = multiprocessing.connection.wait([conn, process.sentinel, self._wake_in])
                if conn in ready:
                    with contextlib.suppress(EOFError, OSError):
                        conn.recv()  # READY
                        return worker
                if conn in ready or process.sentinel in ready:
                    process.join(_EXIT_WAIT)  # (waits for its exit code, unlike the sentinel)
                    raise RuntimeError(
                        f"the worker process exited before it was ready "
                        f"({_exit_text(process.exitcode)}); its error output above says why "
                        "(a worker imports your main module: it must guard what it runs "
                        "with `if __name__ == '__main__':`)"
                    )
                self._drain_wakes()
                with self._lock:
                    if self._closing:
                        raise _Closing
        except BaseException:
            self._discard_worker()
            raise

    def _environment(self) -> dict[str, str]:
        if self._placement is None:
            return {}
        environment = self._placement(self.index)
        if not isinstance(environment, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in environment.items()
        ):
            raise TypeError(
                f"placement({self.index}) must return a mapping of environment variable names "
                f"to strings, got {environment!r}"
            )
        return dict(environment)

    def _retire_worker(self) -> None:
        """Ask the current worker to exit (it is idle), and reap it."""
        worker = self._worker
        if worker is None:
            return
        with contextlib.suppress(OSError):
            worker.conn.send((protocol.EXIT,))
        self._reap(worker)

    def _discard_worker(self) -> None:
        """Terminate the current worker at once, and reap it."""
        worker = self._worker
        if worker is not None:
            with contextlib.suppress(OSError, ValueError):
                worker.process.terminate()
            self._reap(worker, wait=_TERM_WAIT)

    def _reap(self, worker: _Worker, wait: float = _EXIT_WAIT) -> int | None:
        """Wait for ``worker`` to exit (SIGTERM after ``wait``, SIGKILL after that), then
        release it; returns its exit code."""
        with self._lock:
            worker.reaping = True  # kill() sends no signal from here on
            killed = worker.killed
        process = worker.process
        if killed:
            wait = _TERM_WAIT  # SIGTERM has been sent
        if not multiprocessing.connection.wait([process.sentinel], wait):
            if not killed:
                _signal_group(process, signal.SIGTERM)
            if not multiprocessing.connection.wait([process.sentinel], _TERM_WAIT):
                _signal_group(process, signal.SIGKILL)
        # Whatever the models left running in its process group goes with it; before
        # join(), while the exited worker is a zombie, so its pid cannot be reused.
        if worker.pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(worker.pid, signal.SIGKILL)
        process.join()
        exitcode = process.exitcode
        _live.discard(process)
        with contextlib.suppress(ValueError):  # the exit hook may be signalling it still
            process.close()
        worker.selector.close()
        worker.conn.close()
        worker.control.close()
        with self._lock:
            if self._worker is worker:
                self._worker = None
        return exitcode


_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 60


def _describe(run: RunHandle) -> str:
    """Which model a run is, for an error message: its id, class and params."""
    model = run.model
    return f"model {run.model_id} ({type(model).__qualname__}, params {_brief.repr(model.params)})"


def _send(worker: _Worker, message: bytes) -> bool:
    """Send ``message`` to ``worker``; False if its end of the pipe is closed (it died)."""
    try:
        worker.conn.send_bytes(message)
    except OSError:
        return False
    return True


def _check_importable(cls: type) -> None:
    """A worker finds a model's class by importing its module; ``__main__`` only if
    it is a file (``spawn`` runs it again as ``__mp_main__``)."""
    if cls.__module__ != "__main__":
        return
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or not os.path.isfile(path):
        raise TypeError(
            f"{cls.__qualname__} is defined in a __main__ that a worker process cannot "
            "import (python -c, a notebook, or a script read from stdin): define the model "
            "class in a module file and import it, or run a script file"
        )


def _pickled(model: Model) -> bytes:
    """``model`` pickled, or a TypeError that names its class and says what to do."""
    try:
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise TypeError(
            f"{type(model).__qualname__} cannot be sent to a worker process: pickling the model "
            f"failed ({type(error).__name__}: {error}). A ProcessExecutor pickles each model: "
            "define its class (and any function it holds) at module level of an importable "
            "module, and keep lambdas, local functions, open files, locks, threads and "
            "sockets out of its attributes (create them inside execute())"
        ) from error


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a worker process, as text.

    Set as the ``__cause__`` of the error the parent restores, as
    ``concurrent.futures`` does, so formatting that error shows the user's frames.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _restore(outcome: protocol.Outcome | None) -> BaseException | None:
    """The error a worker sent back (None if ``execute()`` returned)."""
    if outcome is None:
        return None
    pickled, type_name, message, text = outcome
    error: object = None
    if pickled is not None:
        try:
            error = pickle.loads(pickled)
        except BaseException:  # a hostile __reduce__ may raise SystemExit
            error = None
    if not isinstance(error, BaseException):
        error = RuntimeError(
            f"{type_name}: {message} (raised in the worker process; the exception itself "
            "could not be sent back: it cannot be pickled and unpickled)"
        )
    if text:
        error.__cause__ = _RemoteTraceback(text)
    return error


def _signal_group(process: BaseProcess, signum: int) -> None:
    """Signal a worker's process group (the model's own children too), or the worker
    alone while it has not made its group yet."""
    pid = process.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signum)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def _exit_text(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


#: Worker processes not yet reaped. At interpreter exit (an engine never closed),
#: they are terminated; otherwise multiprocessing would wait for them forever.
_live: set[BaseProcess] = set()


@atexit.register  # after multiprocessing's own (imported above), so it runs before it
def _terminate_live_workers() -> None:
    for process in list(_live):
        with contextlib.suppress(Exception):  # a supervisor may be reaping it meanwhile
            process.terminate()
    for process in list(_live):
        with contextlib.suppress(Exception):
            if not multiprocessing.connection.wait([process.sentinel], _TERM_WAIT):
                process.kill()
