"""Task upserts per second: through the HTTP API and through the service layer directly.

HTTP: `syncd run` in its own process (uvicorn and its 2 worker threads, SQLite in a tmp state
dir), and several concurrent httpx clients (threads, keep-alive connections) in this one, each
creating tasks with `PUT /v1/tasks/{id}` for a fixed time. Service: the same upserts, from as
many threads, straight into `Service.upsert_task` of a node in this process, with its workers
running too. Rates are wall-clock; the CPU each upsert costs the syncd process is printed too,
since on a shared machine the rates also measure what other programs leave free. Each upsert is a new task set by a manager for one of 100 users, due tomorrow:
N1 (a center entry and three deliveries) and two timers (N4, N8). The workers deliver the
entries meanwhile in both runs, as they would on a live node.

    .venv/bin/python -m bench.bench_upserts [--clients 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench import BENCH_API_KEY, percentile, row, settings, show
from syncd.clock import SystemClock
from syncd.daemon import build

NAME = "upserts"
USERS = 100
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def task_body(n: int, tomorrow: datetime) -> dict:
    return {"actor_id": "boss", "text": f"Call client #{n}", "type": "call",
            "responsible_id": f"u{n % USERS:03d}",
            "due_at": (tomorrow + timedelta(seconds=n)).isoformat()}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hammer(call, clients: int, seconds: float) -> tuple[int, list[float], float]:
    """Run `call(client, n)` from `clients` threads for `seconds`; (count, latencies, wall)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(c: int) -> None:
        n = c
        start.wait()
        try:
            while time.monotonic() < stop_at[0]:
                t0 = time.perf_counter()
                call(c, n)
                latencies[c].append(time.perf_counter() - t0)
                n += clients
        except BaseException as exc:  # noqa: BLE001 (re-raised below, in the caller)
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    if errors:
        raise errors[0]
    flat = [x for per in latencies for x in per]
    return len(flat), flat, wall


def over_http(clients: int, seconds: float, tmp: Path
              ) -> tuple[int, list[float], float, float]:
    port = free_port()
    env = {**os.environ, "SYNCD_SETTINGS": str(REPO / "settings.yaml"),
           "SYNCD_STATE_DIR": str(tmp / "http"), "SYNCD_HTTP__PORT": str(port),
           "SYNCD_API__KEYS": json.dumps([BENCH_API_KEY]), "SYNCD_LOG__LEVEL": "WARNING",
           "SYNCD_DATABASE__URL": ""}
    log = tmp / "syncd-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "syncd", "run"], env=env, cwd=tmp,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {BENCH_API_KEY}"}
    try:
        deadline = time.monotonic() + 90  # a busy machine starts it slowly
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"syncd run exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"syncd run did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        sessions = [httpx.Client(base_url=url, headers=headers, timeout=30)
                    for _ in range(clients)]
        for uid in ["boss"] + [f"u{i:03d}" for i in range(USERS)]:
            sessions[0].put(f"/v1/users/{uid}", json={"name": uid}).raise_for_status()
        tomorrow = datetime.now(UTC) + timedelta(days=1)

        def call(c: int, n: int) -> None:
            r = sessions[c].put(f"/v1/tasks/t{n}", json=task_body(n, tomorrow))
            if r.status_code != 200:
                raise RuntimeError(f"PUT /v1/tasks/t{n}: {r.status_code} {r.text}")

        cpu0 = process_cpu(proc.pid)
        count, latencies, wall = hammer(call, clients, seconds)
        cpu = process_cpu(proc.pid) - cpu0
        for s in sessions:
            s.close()
        return count, latencies, wall, cpu
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def direct(clients: int, seconds: float, tmp: Path) -> tuple[int, list[float], float, float]:
    node = build(settings(tmp / "direct"), SystemClock())
    svc = node.service
    for uid in ["boss"] + [f"u{i:03d}" for i in range(USERS)]:
        svc.put_user(uid, {"name": uid})
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    node.worker.start(2)
    try:
        def call(c: int, n: int) -> None:
            body = task_body(n, tomorrow)
            actor = body.pop("actor_id")
            body["due_at"] = datetime.fromisoformat(body["due_at"])
            svc.upsert_task(f"t{n}", body, actor)

        cpu0 = time.process_time()
        count, latencies, wall = hammer(call, clients, seconds)
        return count, latencies, wall, time.process_time() - cpu0
    finally:
        node.worker.stop()
        node.db.dispose()


def run(clients: int = 8, seconds: float = 10.0) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="syncd-bench-upserts-") as tmp_dir:
        tmp = Path(tmp_dir)
        n_http, lat_http, wall_http, cpu_http = over_http(clients, seconds, tmp)
        n_svc, lat_svc, wall_svc, cpu_svc = direct(clients, seconds, tmp / "many")
        n_one, _lat, wall_one, cpu_one = direct(1, seconds, tmp / "one")
    http_rate, svc_rate = n_http / wall_http, n_svc / wall_svc
    # CPU per upsert of the syncd process (the HTTP server's, or this one's) does not depend on
    # how many cores other programs leave free; the rates above do.
    http_cpu, svc_cpu = 1000 * cpu_http / n_http, 1000 * cpu_svc / n_svc
    return [
        row(NAME, f"HTTP PUT /v1/tasks ({clients} clients)", http_rate, "/s",
            baseline=svc_rate),
        row(NAME, f"service.upsert_task ({clients} threads)", svc_rate, "/s"),
        row(NAME, "CPU per upsert, HTTP (syncd process, workers included)", http_cpu, "ms",
            baseline=svc_cpu),
        row(NAME, "CPU per upsert, service (workers included)", svc_cpu, "ms"),
        row(NAME, "service.upsert_task (1 thread: no lock waits)", n_one / wall_one, "/s"),
        row(NAME, "CPU per upsert, service, 1 thread", 1000 * cpu_one / n_one, "ms"),
        row(NAME, "HTTP latency p50", percentile(lat_http, 50) * 1000, "ms"),
        row(NAME, "HTTP latency p99", percentile(lat_http, 99) * 1000, "ms"),
        row(NAME, "service latency p99", percentile(lat_svc, 99) * 1000, "ms"),
    ]


def main() -> list[dict]:
    return run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    show(run(args.clients, args.seconds))
