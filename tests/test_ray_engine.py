"""Evaluations on Ray (`--engine ray`, crs/evaluation/ray_engine.py).

The fast tests need no cluster: a missing Ray and a dead address each give one line, quickly. The
`cluster` tests start a real two-node Ray cluster on 127.0.0.1 (`ray start --head` and a second
node joining it, one CPU each; Ray's files in a temporary folder, its token there too, never in
~/.ray) and stop it at the end, and check the engine's promises on it: the records of one
process, a killed worker retried to the same result, the run shipped to each node, the LLM user,
the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crs.cli import main
from crs.data import Dataset
from crs.evaluation import ray_engine
from crs.evaluation.ray_engine import RayEngineError, check_ray_engine
from crs.evaluation.records import ConversationRecord, read_transcripts
from crs.evaluation.runner import RunResult, RunSpec, evaluate
from crs.factory import policy_for_run
from crs.settings import ConfigError, LLMSettings, ray_address_parts

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lines(result: RunResult) -> list[dict[str, Any]]:
    """A run's transcripts without what is measured rather than decided (times)."""
    lines = [record.to_json(timings=False) for record in result.records]
    for line in lines:
        for key in ("seconds", "llm_seconds"):
            line.pop(key, None)
    return lines


# --- without a cluster ----------------------------------------------------------------------------


def test_ray_addresses_are_checked_like_any_setting() -> None:
    assert ray_address_parts("") is None and ray_address_parts("auto") is None
    assert ray_address_parts("10.0.0.5:6379") == ("", "10.0.0.5", 6379)
    assert ray_address_parts("ray://head.example:10001") == ("ray", "head.example", 10001)
    for bad in ("head", "http://head:80", "ray://head", "head:0", "head:x"):
        with pytest.raises(ValueError):
            ray_address_parts(bad)
    with pytest.raises(ConfigError, match="ray_address"):
        RunSpec(engine="ray", ray_address="head")
    with pytest.raises(ConfigError, match="did you mean 'ray'"):
        RunSpec(engine="rays")


def test_without_ray_the_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tiny: Dataset
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(RayEngineError, match=r'pip install -e "\.\[ray\]"'):
        check_ray_engine("")
    spec = RunSpec(dataset="tiny", policy="max_entropy", scorer="popularity", engine="ray")
    with pytest.raises(RayEngineError, match="needs Ray"):
        evaluate(spec, tiny, policy_for_run(spec, tiny))


def test_a_dead_address_is_one_line_in_seconds(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _free_port()  # nothing listens there
    started = time.monotonic()
    code = main(
        ["evaluate", "--engine", "ray", "--ray-address", f"127.0.0.1:{closed}", "--limit", "5"]
        + ["--policy", "max_entropy", "--scorer", "popularity", "--data-dir", str(data_dir)]
        + ["--out", str(tmp_path / "run"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 20
    assert err.count("\n") == 1 and f"no Ray cluster answers at 127.0.0.1:{closed}" in err, err
    assert not (tmp_path / "run").exists()
    # Something that accepts connections but never speaks Ray's protocol: bounded too.
    monkeypatch.setattr(ray_engine, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(RayEngineError, match="not a Ray cluster"):
            check_ray_engine(address)


# --- on a real cluster ----------------------------------------------------------------------------


@dataclasses.dataclass
class Cluster:
    address: str
    client_address: str  # the head's Ray Client server (ray://...)
    temp_dir: Path
    nodes: list[subprocess.Popen[bytes]]

    def raylets(self) -> set[int]:
        return {
            pid for pid, _, command in _processes() if "raylet" in command and str(self.temp_dir) in command
        }

    def busy_workers(self) -> list[tuple[int, int]]:
        """(pid, raylet pid) of this cluster's worker processes now playing a chunk."""
        raylets = self.raylets()
        return [
            (pid, ppid) for pid, ppid, command in _processes() if ppid in raylets and "play_chunk" in command
        ]


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(entry.name), ppid, command))
    return found


def _start_node(arguments: list[str], temp_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # --block: the node lives as long as this process, and stops its own processes on SIGTERM.
    log = open(temp_dir / f"node-{len(list(temp_dir.glob('node-*.log')))}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [str(RAY), "start", "--block", "--num-cpus=1", "--disable-usage-stats", *arguments],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def _stop(cluster: Cluster) -> None:
    ray_engine.disconnect()
    for node in reversed(cluster.nodes):  # the joining node first, then the head
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
    # Anything of this cluster that outlived its node (found by its folder): stopped by pid.
    for pid, _, command in _processes():
        if str(cluster.temp_dir) in command and pid != os.getpid():
            os.kill(pid, signal.SIGKILL)


def _set_auth(values: dict[str, str | None]) -> None:
    """Ray's authentication settings for this process. Ray reads them once, when first imported
    (an earlier test may have imported it): its token cache is read again."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pytest.importorskip("ray")
    import ray

    # Short: Ray's socket paths must fit in 107 bytes.
    temp_dir = Path(tmp_path_factory.mktemp("ray", numbered=True))
    token = temp_dir / "token"
    token.write_text(secrets.token_hex(32))
    auth: dict[str, str | None] = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}  # not ~/.ray
    saved = {key: os.environ.get(key) for key in auth}
    _set_auth(auth)
    env = dict(os.environ)
    port, client_port = _free_port(), _free_port()
    cluster = Cluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}", temp_dir, [])
    try:
        common = ["--node-ip-address=127.0.0.1", f"--dashboard-agent-listen-port={_free_port()}"]
        head = [f"--port={port}", "--head", "--include-dashboard=false", f"--temp-dir={temp_dir / 'r'}"]
        head.append(f"--ray-client-server-port={client_port}")
        cluster.nodes.append(_start_node(head + common, temp_dir, env))
        deadline = time.monotonic() + 90
        while True:  # the head answers before the second node may join it
            try:
                check_ray_engine(cluster.address)
                break
            except RayEngineError:
                if time.monotonic() > deadline or cluster.nodes[0].poll() is not None:
                    raise
                time.sleep(0.5)
        cluster.nodes.append(_start_node([f"--address={cluster.address}", *common], temp_dir, env))
        ray_engine.connect(cluster.address, 0)
        while ray.cluster_resources().get("CPU", 0) < 2:
            assert time.monotonic() < deadline, "the second node did not join in 90 s"
            time.sleep(0.5)
        yield cluster
    finally:
        _stop(cluster)
        _set_auth(saved)


@pytest.mark.cluster
def test_cluster_records_equal_one_process_and_survive_a_killed_worker(
    ray_cluster: Cluster, lastfm_star: Dataset
) -> None:
    spec = RunSpec(
        dataset="lastfm_star",
        policy="random",
        scorer="popularity",
        limit=240,
        answer_noise=0.1,
        dont_know=0.1,
    )
    policy = policy_for_run(spec, lastfm_star)
    one = evaluate(spec, lastfm_star, policy)
    killed: list[int] = []
    nodes_seen: set[int] = set()
    order: list[int] = []

    def on_record(record: ConversationRecord) -> None:
        order.append(record.conversation_id)
        busy = ray_cluster.busy_workers()
        nodes_seen.update(raylet for _, raylet in busy)
        if not killed and busy:  # mid-run: a worker with a chunk in hand dies
            pid = busy[0][0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    # Which nodes play chunks, watched all along: when a record comes back, the worker that
    # played it has just gone idle, so sampling only then can miss a node on a busy machine.
    running = threading.Event()
    running.set()

    def watch() -> None:
        while running.is_set():
            nodes_seen.update(raylet for _, raylet in ray_cluster.busy_workers())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        on_ray = evaluate(
            dataclasses.replace(spec, engine="ray", ray_address=ray_cluster.address),
            lastfm_star,
            policy,
            on_record=on_record,
        )
    finally:
        running.clear()
        watcher.join()
    assert killed, "no worker was busy when the first records came back"
    assert not Path(f"/proc/{killed[0]}").exists()
    # Ray saw its chunk's worker die and ran the chunk again (this process's Ray log says so).
    logs = ray_cluster.temp_dir / "r" / "session_latest" / "logs"
    driver_log = "".join(path.read_text() for path in logs.glob(f"python-core-driver-*_{os.getpid()}.log"))
    assert "WORKER_DIED" in driver_log
    assert order == list(range(240))  # streamed back in conversation order
    assert _lines(on_ray) == _lines(one)
    assert on_ray.metrics == one.metrics
    assert len(nodes_seen) == 2, "both nodes played chunks"


@pytest.mark.cluster
def test_cluster_plays_the_llm_user(ray_cluster: Cluster, lastfm_star: Dataset, tmp_path: Path) -> None:
    """The spoken evaluation: each worker builds its own chat on first use. Templates rather than
    the local model, whose words take seconds each on two busy cores (the model's own seeding is
    tested in test_llm_user.py; `crs evaluate --simulator llm --engine ray` was checked by hand)."""
    spec = RunSpec(
        dataset="lastfm_star",
        policy="max_entropy",
        scorer="popularity",
        simulator="llm",
        limit=8,
        llm=LLMSettings(backend="none"),
    )
    policy = policy_for_run(spec, lastfm_star)
    one = evaluate(spec, lastfm_star, policy, cache_dir=tmp_path)
    on_ray = evaluate(
        dataclasses.replace(spec, engine="ray", ray_address=ray_cluster.address),
        lastfm_star,
        policy,
        cache_dir=tmp_path,
    )
    assert _lines(on_ray) == _lines(one)
    assert all(record.turns[0].user_text for record in on_ray.records)


@pytest.mark.cluster
def test_cli_evaluate_on_the_cluster(ray_cluster: Cluster, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "crs", "evaluate", "--engine", "ray", "--ray-address", ray_cluster.address]
        + ["--policy", "max_entropy", "--scorer", "popularity", "--limit", "60", "--data-dir", str(data_dir)]
        + ["--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # Ray's own log lines stay out of the terminal
    config = json.loads((out / "config.json").read_text())
    assert config["evaluate"]["engine"] == "ray" and config["evaluate"]["ray_address"] == ray_cluster.address
    local = tmp_path / "local"
    again = subprocess.run(
        [sys.executable, "-m", "crs", "evaluate", "--policy", "max_entropy", "--scorer", "popularity"]
        + ["--limit", "60", "--data-dir", str(data_dir), "--out", str(local), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr

    def decided(folder: Path) -> list[dict[str, Any]]:
        return [record.to_json(timings=False) for record in read_transcripts(folder / "transcripts.jsonl")]

    assert decided(out) == decided(local)
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (out, local)]
    assert [m["SR@15"] for m in metrics] == [metrics[1]["SR@15"]] * 2


@pytest.mark.cluster
def test_ray_client_address(ray_cluster: Cluster, lastfm_star: Dataset) -> None:
    """ray://HOST:PORT: the same run through the head's Ray Client server."""
    spec = RunSpec(
        dataset="lastfm_star", policy="max_entropy", scorer="popularity", limit=40, answer_noise=0.1
    )
    policy = policy_for_run(spec, lastfm_star)
    one = evaluate(spec, lastfm_star, policy)
    through_client = dataclasses.replace(spec, engine="ray", ray_address=ray_cluster.client_address)
    try:
        assert _lines(evaluate(through_client, lastfm_star, policy)) == _lines(one)
    finally:
        ray_engine.connect(ray_cluster.address, 0)  # back to the GCS address for the other tests
