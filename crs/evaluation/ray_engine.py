"""Evaluations on Ray (`crs evaluate --engine ray`): the run's conversations as Ray tasks.

The local process pool (`crs.evaluation.runner`) stays the default; this module is used only when
a run asks for `engine = "ray"`, and imports Ray (an optional extra: `pip install -e ".[ray]"`)
only then. What it guarantees:

- **The same records.** A task plays a chunk of consecutive conversations with
  `crs.evaluation.runner.play_conversation`, which seeds conversation i by i alone
  (`crs.protocol`): the transcripts and metrics are those of `workers = 1`, apart from the
  measured decision times, whatever the cluster, its size or the order tasks finish in.
- **Records in conversation order, as they finish.** Chunks are submitted in order, a bounded
  window of them in flight, and their records are yielded in order: the progress bar, the run
  folder (appended record by record, so `--resume` works) and Ctrl+C (what finished is kept; the
  tasks still running are cancelled) behave as with the pool.
- **The run shipped once per node, not once per task.** The `RunContext` (dataset, trained
  policy, target pairs: a few MB) is put in Ray's object store once (`ray.put`); a node fetches it
  once, and each worker process deserialises it once and keeps it for the run's later chunks.
- **Faults.** A worker process that dies mid-chunk (killed, out of memory) has its chunk retried
  by Ray (`MAX_RETRIES`); conversations are deterministic, so the retried chunk gives the same
  records. A cluster address where no Ray cluster answers fails in seconds with one line
  (`RayEngineError`), instead of Ray's own retries for minutes.

Where the conversations run: `ray_address = ""` starts a local Ray instance with `workers` CPUs
(kept for the process's later runs: `crs compare` pays the start once; `disconnect` ends it);
"auto" joins the cluster this machine is part of (`ray start`, or $RAY_ADDRESS); "HOST:PORT" a
head node's GCS address; "ray://HOST:PORT" its Ray Client server. On an existing cluster every CPU
it has is used and `workers` does not matter. The cluster's nodes need crs installed (the same
version): tasks import `crs`, the policies and the simulators; the data directory is not needed
there, the dataset travels with the run. An LLM-user run also works: each worker process builds
its own chat and language model on first use (`crs.evaluation.spoken`), reading the model and the
response cache under the run's cache folder, which must be reachable at the same path on every
node (it is on a one-machine cluster).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crs.evaluation.context import RunContext
from crs.evaluation.records import ConversationRecord
from crs.settings import ray_address_parts

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "CONNECT_TIMEOUT_S",
    "MAX_RETRIES",
    "RAY_MISSING",
    "RayConnection",
    "RayEngineError",
    "check_ray_engine",
    "connect",
    "disconnect",
    "play_on_ray",
]

PlayConversation = Callable[[RunContext, int], ConversationRecord]

RAY_MISSING = 'the Ray engine (--engine ray) needs Ray, an optional extra: pip install -e ".[ray]"'
CONNECT_TIMEOUT_S = 10.0  # a cluster address must answer within this (Ray itself retries for minutes)
MAX_RETRIES = 3  # times Ray runs a chunk again after its worker process died
CHUNKS_PER_CPU = 2  # chunks in flight per CPU of the cluster: one running, one queued behind it
POLL_S = 0.2  # how often the wait for the next chunk lets Ctrl+C through


class RayEngineError(ValueError):
    """The Ray engine cannot run: Ray is not installed, no cluster answers at the address, the
    cluster lost a chunk more often than it retries. The message is one line, meant for people."""


@dataclass(frozen=True)
class RayConnection:
    """This process's link to Ray: the address asked for, whether this module made the connection
    (and so ends it: a local instance stops with it) or found the caller's own, and the CPUs the
    cluster has."""

    address: str
    local_cpus: int  # CPUs asked of a local instance (address ""); 0 when joining a cluster
    owned: bool
    cpus: int


_CONNECTION: RayConnection | None = None  # in the driver process: the connection this module made


def import_ray() -> ModuleType:
    """Ray, or one clear line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayEngineError(RAY_MISSING) from None
    return ray


def check_ray_engine(address: str) -> None:
    """Fail fast, before any training: Ray is importable and, for a cluster address, a Ray
    cluster answers there (`RayEngineError` otherwise). Cheap; connects to nothing."""
    import_ray()
    parts = ray_address_parts(address)
    if parts is not None:
        _probe(address, parts[1], parts[2])


def _probe(address: str, host: str, port: int) -> None:
    """A Ray head (its GCS or its Ray Client server) answers gRPC at host:port within
    CONNECT_TIMEOUT_S; without this check `ray.init` retries a dead address for minutes."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RayEngineError(
            f"no Ray cluster answers at {address} ({reason.lower()}): start one with `ray start --head` "
            'or give its address with --ray-address (or "" for a local Ray instance)'
        ) from None
    import grpc  # Ray's own dependency

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        raise RayEngineError(
            f"{address} accepts connections but is not a Ray cluster (no answer within "
            f"{CONNECT_TIMEOUT_S:g} s): give the head node's address (ray start prints it)"
        ) from None
    finally:
        channel.close()


def connect(address: str, local_cpus: int) -> RayConnection:
    """Ray connected as asked, reusing this process's connection when it is the same. Code that
    called `ray.init` itself keeps its own connection: it is used as it is."""
    global _CONNECTION
    ray = import_ray()
    wanted_cpus = local_cpus if address == "" else 0
    if ray.is_initialized():
        if _CONNECTION is None:  # the caller's own Ray: theirs to start and stop
            return RayConnection(address, 0, False, _cluster_cpus(ray))
        if (_CONNECTION.address, _CONNECTION.local_cpus) == (address, wanted_cpus):
            return _CONNECTION
        disconnect()
    check_ray_engine(address)
    # Ray's own log lines and the workers' output would break the progress bar; errors still
    # come back as exceptions.
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address == "":
            ray.init(num_cpus=local_cpus, include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except Exception as error:  # version mismatch, authentication, a cluster that went away
        hint = ""
        if address:  # the usual cause once the address answers (Ray's log says "Unauthenticated")
            hint = (
                "; a cluster with token authentication needs its token here "
                "($RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
            )
        raise RayEngineError(
            f"cannot connect to Ray at {address or 'a new local instance'}: {_line(error)}{hint}"
        ) from None
    _CONNECTION = RayConnection(address, wanted_cpus, True, _cluster_cpus(ray))
    return _CONNECTION


def disconnect() -> None:
    """End this process's connection to Ray (a local instance it started stops with it)."""
    global _CONNECTION
    if _CONNECTION is not None:
        import ray

        ray.shutdown()
        _CONNECTION = None


def _cluster_cpus(ray: ModuleType) -> int:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise RayEngineError("the Ray cluster has no CPUs to run conversations on")
    return cpus


def _line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# --- the worker side ------------------------------------------------------------------------------

# In a Ray worker process: the run being played, by the id of its object in the store, so that a
# run's later chunks in this process skip the deserialisation (0.1-0.2 s for LastFM*).
_WORKER_RUN: tuple[str, RunContext] | None = None


def play_chunk(
    play: PlayConversation, boxed_context: list[Any], conversation_ids: Sequence[int]
) -> list[ConversationRecord]:
    """A Ray task: conversations `conversation_ids` of the run in the object store, each played by
    `play`. The reference comes in a list so that Ray passes it as it is rather than fetching the
    object for every task."""
    global _WORKER_RUN
    import ray

    reference = boxed_context[0]
    key = reference.hex()
    if _WORKER_RUN is None or _WORKER_RUN[0] != key:
        _WORKER_RUN = None  # drop an earlier run's dataset and policy before fetching this one
        _WORKER_RUN = (key, ray.get(reference))
    context = _WORKER_RUN[1]
    return [play(context, conversation_id) for conversation_id in conversation_ids]


_REMOTE: Any = None  # play_chunk as a Ray remote function, made when Ray is first used


def _remote_play_chunk(ray: ModuleType) -> Any:
    global _REMOTE
    if _REMOTE is None:
        # A dead worker's chunk is run again; an exception raised by the code is not (it would
        # only raise again: conversations are deterministic).
        _REMOTE = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(play_chunk)
    return _REMOTE


# --- the driver side ------------------------------------------------------------------------------


def play_on_ray(
    play: PlayConversation,
    context: RunContext,
    conversation_ids: Sequence[int],
    chunk: int,
    address: str,
    local_cpus: int,
) -> Generator[ConversationRecord, None, None]:
    """The records of `conversation_ids`, each played by `play` (a module-level function: Ray
    ships it by name), in Ray tasks of `chunk` conversations, yielded in conversation order as they
    finish. `address` and `local_cpus`: see `connect`. Closing the
    iterator early (Ctrl+C, an error in the caller) stops the tasks still in flight."""
    ray = import_ray()
    if not conversation_ids:
        return
    connection = connect(address, local_cpus)
    if context.cache_dir is None:  # the workers' default could differ from this process's ($CRS_CACHE_DIR)
        from crs.scoring import default_cache_dir

        context = dataclasses.replace(context, cache_dir=default_cache_dir())
    remote = _remote_play_chunk(ray)
    chunks = [conversation_ids[start : start + chunk] for start in range(0, len(conversation_ids), chunk)]
    window = CHUNKS_PER_CPU * connection.cpus
    stored = ray.put(context)
    pending: deque[Any] = deque()
    submitted = 0
    try:
        while pending or submitted < len(chunks):
            while submitted < len(chunks) and len(pending) < window:
                pending.append(remote.remote(play, [stored], chunks[submitted]))
                submitted += 1
            ready, _ = ray.wait([pending[0]], timeout=POLL_S)
            if ready:
                yield from _records(ray, pending.popleft())
    finally:
        del stored  # the run's object leaves the store once no task holds it
        if pending:  # interrupted: nothing of this run is left running
            _stop_tasks(ray, connection, pending)


def _stop_tasks(ray: ModuleType, connection: RayConnection, pending: Sequence[Any]) -> None:
    """Stop an interrupted run's tasks. A connection this module made is ended, which ends the
    run's Ray job and with it its tasks: cancelling them one by one while Ctrl+C also reaches
    the workers trips an internal check of Ray 2.60 ("Tried to complete task that was not
    pending") that aborts the process. A caller's own Ray: its tasks are asked to stop."""
    if connection.owned:
        disconnect()
        return
    for reference in pending:
        ray.cancel(reference)


def _records(ray: ModuleType, reference: Any) -> list[ConversationRecord]:
    """A finished chunk's records; the error a conversation's code raised as that error itself (an
    LLM backend's, say, which the CLI words), the cluster's failures as one line."""
    try:
        return list(ray.get(reference))
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        if isinstance(cause, KeyboardInterrupt):  # Ctrl+C reached the worker before this process
            raise KeyboardInterrupt from None
        if isinstance(cause, Exception):
            raise cause from None
        raise RayEngineError(f"a Ray task failed: {_line(error)}") from None
    except ray.exceptions.RayError as error:  # a worker died more often than MAX_RETRIES, a node was lost
        raise RayEngineError(f"the Ray cluster lost a chunk of conversations: {_line(error)}") from None
