"""Benchmark of the inference API against a bare FastAPI + ONNX Runtime app (prints figures).

    .venv/bin/python tests/benchmarks/bench_api.py [--duration 10] [--server-core 0] [--driver-core 1]

Each server runs as one uvicorn worker pinned to one core (`taskset`); this process pins itself
to the other core and drives it with a lean asyncio HTTP/1.1 keep-alive client (one request in
flight per connection). Figures: single-record requests/s and p50/p99 at 16 and 64
connections, batches, the in-process per-record cost of the runtime, and the server's
resident memory with the model loaded. The bare reference (ten lines, no validation, no
metrics) serves the same ONNX file in the same run, so the cost of our features is a ratio.
Targets (issue 2): >= 3,000 single/s at 64 connections, p99 < 30 ms, >= 75 % of the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from apps.inference import ModelRegistry, load_runtime, synthetic_dataset, train  # noqa: E402
from apps.inference.dataset import DEPLOY_SAMPLES  # noqa: E402
from apps.waiting import wait_for  # noqa: E402
from environments import load_environment  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.processes import stop_process  # noqa: E402

# The reference: FastAPI + ONNX Runtime and nothing else (one intra-op thread, like ours, on one core).
BARE_APP = '''\
import numpy as np, onnxruntime as ort, os
from fastapi import FastAPI, Request
o = ort.SessionOptions(); o.intra_op_num_threads = 1
sess = ort.InferenceSession(os.environ["BARE_MODEL"], o, providers=["CPUExecutionProvider"])
app = FastAPI()
@app.post("/v1/predict")
async def predict(request: Request):
    body = await request.json()
    p = sess.run(["probabilities"], {"features": np.array([body["features"]], dtype=np.float32)})[0]
    return {"label": int(p[0].argmax()), "probabilities": p[0].tolist()}
'''


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return float(np.percentile(self.latencies_ms, q))


def _request(path: str, body: bytes, port: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _connection(port: int, request: bytes, stop_at: float, record_from: float, out: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        while True:
            start = clock()
            if start >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            end = clock()
            if start >= record_from:
                out.requests += 1
                out.latencies_ms.append((end - start) * 1000)
                if head[9:12] != b"200":
                    out.errors += 1
    finally:
        writer.close()


async def _drive(port: int, request: bytes, connections: int, duration: float, warmup: float) -> Result:
    now = time.perf_counter()
    out = Result(0, 0, duration, [])
    await asyncio.gather(*(_connection(port, request, now + warmup + duration, now + warmup, out)
                           for _ in range(connections)))
    return out


def drive(port: int, path: str, body: dict, *, connections: int, duration: float, warmup: float = 2.0) -> Result:
    request = _request(path, json.dumps(body).encode(), port)
    try:
        import uvloop

        return uvloop.run(_drive(port, request, connections, duration, warmup))
    except ImportError:
        return asyncio.run(_drive(port, request, connections, duration, warmup))


@contextlib.contextmanager
def server(name: str, argv: list[str], *, env: dict[str, str], port: int, core: int, ready: str) -> Iterator[int]:
    """One uvicorn worker pinned to `core`; yields its pid; always stopped."""
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(["taskset", "-c", str(core), *argv], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; log: {Path(log.name).read_text()[-2000:]}")
            return httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2).status_code == 200

        wait_for(up, what=f"{name} on port {port}", timeout=120, interval=0.2, transient=(httpx.TransportError,),
                 describe=lambda: Path(log.name).read_text()[-2000:])
        yield proc.pid
    finally:
        stop_process(proc, timeout=15)
        Path(log.name).unlink(missing_ok=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def per_record_us(predictor, X: np.ndarray, batch: int, rounds: int) -> float:
    rows = X[:batch]
    predictor.predict_proba(rows)
    start = time.perf_counter()
    for _ in range(rounds):
        predictor.predict_proba(rows)
    return (time.perf_counter() - start) / (rounds * batch) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per scenario (after 2 s warm-up)")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--driver-core", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median round is reported")
    args = parser.parse_args()

    os.sched_setaffinity(0, {args.driver_core})
    env_model = load_environment("local")
    batch_size = env_model.perf.profiles["batch"].batch_size
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        registry = ModelRegistry(f"file://{tmp}/models")
        data = synthetic_dataset(n_samples=DEPLOY_SAMPLES, n_features=20, seed=0)  # what `mlops apps train` deploys
        trained = train(data, classifier="random_forest", seed=0)  # 100 trees, 20 features
        registry.promote(registry.publish(trained))
        artifact = registry.load()
        onnx_path = Path(tmp) / "model.onnx"
        onnx_path.write_bytes(artifact.onnx_bytes)
        (Path(tmp) / "bare.py").write_text(BARE_APP)

        # In-process runtime cost, measured on the server core before any server runs there.
        os.sched_setaffinity(0, {args.server_core})
        predictor = load_runtime(artifact, threads=1)
        in_proc = {b: per_record_us(predictor, data.X, b, r) for b, r in ((1, 5000), (batch_size, 300), (256, 60))}
        os.sched_setaffinity(0, {args.driver_core})

        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "PYTHONPATH": str(REPO)}
        single = {"features": data.X[0].tolist()}
        batch = {"instances": data.X[:batch_size].tolist()}
        results: dict[str, dict] = {}

        ours_port, bare_port = free_port(), free_port()
        ours_env = {**base_env, "MODEL_REGISTRY_URI": registry.uri, "PORT": str(ours_port), "HOST": "127.0.0.1",
                    "LOG_LEVEL": "WARNING"}
        bare_env = {**base_env, "BARE_MODEL": str(onnx_path)}
        bare_argv = [sys.executable, "-m", "uvicorn", "bare:app", "--app-dir", tmp, "--host", "127.0.0.1",
                     "--port", str(bare_port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
        # Both servers share the pinned core but only the driven one is busy; alternating them round by
        # round spreads the other engineers' load over both, so the ratio is fair on a shared machine.
        with server("ours", [sys.executable, "-m", "apps.api"], env=ours_env, port=ours_port,
                    core=args.server_core, ready="/readyz") as ours_pid, \
             server("bare", bare_argv, env=bare_env, port=bare_port, core=args.server_core, ready="/docs") as bare_pid:
            rss_loaded, bare_rss = rss_mib(ours_pid), rss_mib(bare_pid)
            for _ in range(args.rounds):
                for conns in (16, 64):
                    for name, port in (("ours", ours_port), ("bare", bare_port)):
                        r = drive(port, "/v1/predict", single, connections=conns, duration=args.duration)
                        results.setdefault(f"{name} single c{conns}", {"runs": []})["runs"].append(r)
                r = drive(ours_port, "/v1/predict/batch", batch, connections=16, duration=args.duration)
                results.setdefault(f"ours batch{batch_size} c16", {"runs": [], "records": batch_size})["runs"].append(r)
            rss_after = rss_mib(ours_pid)
        for entry in results.values():  # the median round by throughput stands for the scenario
            runs = sorted(entry["runs"], key=lambda r: r.rps)
            entry["r"] = runs[len(runs) // 2]

    load_after = os.getloadavg()
    print(f"\ninference API benchmark: 100-tree random forest, 20 features, {args.duration:.0f} s per scenario, "
          f"median of {args.rounds} alternating rounds, "
          f"server on core {args.server_core}, driver on core {args.driver_core}")
    print(f"load average before {load_before[0]:.1f} / after {load_after[0]:.1f} on {os.cpu_count()} cores "
          "(other work shares the machine)\n")
    print(f"{'scenario':<22}{'req/s':>10}{'records/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, entry in results.items():
        r = entry["r"]
        print(f"{name:<22}{r.rps:>10.0f}{r.rps * entry.get('records', 1):>12.0f}{r.pct(50):>9.2f}{r.pct(99):>9.2f}"
              f"{r.errors:>8}")
    ours64, bare64 = results["ours single c64"]["r"], results["bare single c64"]["r"]
    ratio = ours64.rps / bare64.rps if bare64.rps else float("nan")
    print(f"\nin-process runtime cost per record: 1 row {in_proc[1]:.1f} us, batch {batch_size} "
          f"{in_proc[batch_size]:.1f} us, batch 256 {in_proc[256]:.1f} us (onnxruntime, 1 thread)")
    print(f"server RSS with the model loaded: ours {rss_loaded:.0f} MiB (after load {rss_after:.0f} MiB), "
          f"bare {bare_rss:.0f} MiB")
    print(f"ours / bare throughput at 64 connections: {ratio:.0%}")
    checks = {
        ">= 3000 single/s at 64 connections": ours64.rps >= 3000,
        "p99 < 30 ms at 64 connections": ours64.pct(99) < 30,
        ">= 75 % of the bare app": ratio >= 0.75,
        "no failed request": all(r.errors == 0 for e in results.values() for r in e["runs"]),
    }
    for check, ok in checks.items():
        print(f"  [{'met' if ok else 'MISSED'}] {check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
