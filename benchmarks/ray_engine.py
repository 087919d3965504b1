"""The Ray engine against the local process pool, on this machine (issue 15).

The same run (default: LastFM* valid, the belief policy with BPR, the first 400 shuffled pairs)
is played by the local pool (`--workers N`) and on a local Ray instance with as many CPUs
(`crs evaluate --engine ray --workers N`), N = 1 and 2. The machine is shared, so for each N the
two engines take turns (`--rounds`, medians). For Ray it measures:

- `init_s`: starting the local Ray instance (`ray.init`);
- `ship_mb`, `put_s`: the run as shipped once per node (`ray.put` of the RunContext: dataset,
  trained policy, target pairs);
- `cold_s`: the first run on the fresh instance (worker processes start, import crs, fetch and
  deserialise the run once each); the later runs find the workers started;
- `startup_s` = init_s + cold_s - (a later run's seconds): what Ray costs before its first
  conversation;
- conversations/s once started, and the ratios against the pool with as many processes:
  `ratio_warm` (throughput once started; above 1: Ray is faster) and `ratio_end_to_end` (the
  pool's time over Ray's first run with its start-up: what one `crs evaluate` sees).

Ray's workers run numpy's BLAS on one thread (Ray sets OMP_NUM_THREADS=1 for one-CPU tasks);
the pool's inherit this process's setting: on a busy machine one thread each is the faster.

Every run's records are checked equal to the pool's (times aside) before anything is reported.

    nice -n 10 python benchmarks/ray_engine.py                 # ~3 minutes on 2 cores
    python benchmarks/ray_engine.py --policy max_entropy --scorer popularity --limit 1000

Writes benchmarks/results/ray_engine.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crs.data import load_dataset
from crs.evaluation import ray_engine
from crs.evaluation.context import RunContext
from crs.evaluation.report import markdown_table
from crs.evaluation.runner import RunResult, RunSpec, evaluate
from crs.factory import policy_for_run
from crs.protocol import target_pairs


def _decided(result: RunResult) -> list[dict[str, Any]]:
    return [record.to_json(timings=False) for record in result.records]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="lastfm_star")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--policy", default="belief")
    parser.add_argument("--scorer", default="bpr")
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each engine (median)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    _private_ray_token()

    dataset = load_dataset(args.dataset, args.data_dir)
    spec = RunSpec(
        dataset=args.dataset, split=args.split, policy=args.policy, scorer=args.scorer, limit=args.limit
    )
    policy = policy_for_run(spec, dataset)  # trained (or read from the cache) before any timing
    context = RunContext(spec, dataset, policy, target_pairs(dataset, spec.split))
    ship_mb = 0.0

    rows: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] | None = None
    for cpus in args.cpus:
        pool_spec = dataclasses.replace(spec, workers=cpus)
        on_ray = dataclasses.replace(spec, workers=cpus, engine="ray", ray_address="")
        started = time.perf_counter()
        ray_engine.connect("", cpus)
        init_s = time.perf_counter() - started
        import ray
        from ray.experimental import get_object_locations

        started = time.perf_counter()
        shipped = ray.put(context)
        put_s = time.perf_counter() - started
        # What the object store holds for the run: the bytes each node fetches once.
        location = get_object_locations([shipped]).get(shipped, {})
        ship_mb = max(ship_mb, location.get("object_size", 0) / 1e6)
        del shipped
        pool_runs: list[RunResult] = []
        ray_runs: list[RunResult] = []
        try:
            cold = evaluate(on_ray, dataset, policy)
            # The machine is shared: pool and Ray take turns, so that both see the same load.
            for _ in range(args.rounds):
                pool_runs.append(evaluate(pool_spec, dataset, policy))
                ray_runs.append(evaluate(on_ray, dataset, policy))
        finally:
            ray_engine.disconnect()
        reference = reference or _decided(pool_runs[0])
        for result in [cold, *pool_runs, *ray_runs]:
            result.raise_for_errors()
            if _decided(result) != reference:
                raise RuntimeError(f"a run with {cpus} CPUs gave other records than the first pool run")
        pool_s = statistics.median(result.seconds for result in pool_runs)
        warm_s = statistics.median(result.seconds for result in ray_runs)
        conversations = len(cold.records)
        rows.append(
            {
                "engine": "local pool",
                "cpus": cpus,
                "conversations": conversations,
                "seconds": pool_s,
                "conv_per_s": conversations / pool_s,
            }
        )
        rows.append(
            {
                "engine": "ray (local instance)",
                "cpus": cpus,
                "conversations": conversations,
                "seconds": warm_s,
                "conv_per_s": conversations / warm_s,
                "init_s": init_s,
                "put_s": put_s,
                "ship_mb": ship_mb,
                "cold_s": cold.seconds,
                "startup_s": init_s + cold.seconds - warm_s,
                "ratio_warm": pool_s / warm_s,
                "ratio_end_to_end": pool_s / (init_s + cold.seconds),
            }
        )
        print(_table(rows[-2:]), file=sys.stderr, flush=True)

    print(_table(rows))
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "ray": _ray_version(),
        },
        "run": {
            "dataset": args.dataset,
            "split": args.split,
            "policy": args.policy,
            "scorer": args.scorer,
            "limit": args.limit,
        },
        "command": "python benchmarks/ray_engine.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
    }
    path = args.out / "ray_engine.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {path}")
    return 0


COLUMNS = (
    ("engine", "engine", "{}"),
    ("cpus", "CPUs", "{}"),
    ("conv_per_s", "conv/s", "{:.1f}"),
    ("ratio_warm", "vs pool, started", "{:.2f}"),
    ("startup_s", "start-up s", "{:.1f}"),
    ("init_s", "ray.init s", "{:.1f}"),
    ("put_s", "ray.put s", "{:.2f}"),
    ("ship_mb", "shipped MB", "{:.1f}"),
    ("ratio_end_to_end", "vs pool, one run", "{:.2f}"),
)


def _table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        [title for _, title, _ in COLUMNS],
        [[fmt.format(row[key]) if key in row else "" for key, _, fmt in COLUMNS] for row in rows],
    )


def _private_ray_token() -> None:
    """A local Ray instance turns on token authentication and, without a token, writes one to
    ~/.ray/auth_token. A benchmark leaves the home folder alone: its token lives in a temp file."""
    if any(key in os.environ for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")):
        return
    token = Path(tempfile.mkdtemp(prefix="crs-ray-")) / "token"
    token.write_text(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)


def _ray_version() -> str:
    import ray

    return str(ray.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
