"""How many events.insert per second the calendar emulator serves.

The emulator runs in its own process (as under `syncd emulator`) with its per-minute quotas
off. Several client processes, each with its own account and a pool of keep-alive
connections, insert events for a fixed time, sending the same request googleapiclient sends.
All traffic stays on 127.0.0.1 and the run stops by itself.

The default clients speak HTTP/1.1 on raw asyncio streams: on a 2-core machine an httpx (or
googleapiclient) client burns more CPU per request than the emulator, so with it the figure
measures the clients. `--client httpx` shows that figure too. The emulator's own CPU time per
request (read from /proc) gives its capacity independently of the clients.

The baseline, run the same way beside it, is uvicorn's pure-Python stack (h11 parser, stock
asyncio loop).

    .venv/bin/python -m bench.bench_emulator [--clients 2] [--concurrency 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import httpx

TARGET = 1000.0
PATH = "/calendar/v3/calendars/primary/events?alt=json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port: int, stack: str) -> subprocess.Popen[bytes]:
    # "auto" is what `syncd emulator` runs (httptools and uvloop when installed); "pure"
    # forces uvicorn's pure-Python h11 parser on the stock asyncio loop.
    impl = "" if stack == "auto" else ", http='h11', loop='asyncio'"
    code = ("import uvicorn; from syncd.emulator import EmulatorSettings, create_app; "
            "app = create_app(EmulatorSettings(user_rate_limit=None, project_rate_limit=None)); "
            f"uvicorn.run(app, host='127.0.0.1', port={port}, access_log=False, "
            f"log_level='warning', lifespan='on'{impl})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/emulator/health", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("emulator did not start")


def stack_name(stack: str) -> str:
    if stack == "pure":
        return "h11 + asyncio"
    names = []
    for module, name in (("httptools", "httptools"), ("uvloop", "uvloop")):
        try:
            __import__(module)
            names.append(name)
        except ImportError:
            names.append({"httptools": "h11", "uvloop": "asyncio"}[module])
    return " + ".join(names)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_body(worker: int, n: int) -> bytes:
    return json.dumps({
        "summary": f"call: task {worker}-{n}",
        "start": {"dateTime": "2030-01-01T09:00:00+03:00", "timeZone": "Europe/Moscow"},
        "end": {"dateTime": "2030-01-01T09:30:00+03:00", "timeZone": "Europe/Moscow"},
        "transparency": "transparent",
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]},
        "extendedProperties": {"private": {"task": f"{worker}-{n}", "syncd": "1"}},
    }).encode()


async def raw_connection(port: int, token: str, worker: int, deadline: float) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\naccept: application/json\r\n"
            "accept-encoding: gzip, deflate\r\ncontent-type: application/json\r\n"
            "user-agent: (gzip)\r\nx-goog-api-client: gdcl/2.202.0 gl-python/3.11\r\n")
    ok = failed = n = 0
    while time.monotonic() < deadline:
        n += 1
        body = event_body(worker, n)
        writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        ok, failed = (ok + 1, failed) if status == 200 else (ok, failed + 1)
    writer.close()
    return ok, failed


def httpx_connection(port: int, token: str, worker: int, deadline: float) -> tuple[int, int]:
    ok = failed = n = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(headers=headers) as client:
        while time.monotonic() < deadline:
            n += 1
            response = client.post(f"http://127.0.0.1:{port}{PATH}", content=event_body(worker, n))
            ok, failed = (ok + 1, failed) if response.status_code == 200 else (ok, failed + 1)
    return ok, failed


def client_process(port: int, worker: int, mode: str, seconds: float, concurrency: int,
                   start_at: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    account = httpx.post(f"http://127.0.0.1:{port}/emulator/accounts",
                         json={"email": f"bench{worker}@example.com",
                               "scopes": ["https://www.googleapis.com/auth/calendar"]}).json()
    token = account["access_token"]
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    if mode == "httpx":
        results.put(httpx_connection(port, token, worker, deadline))
        return

    async def run() -> list[tuple[int, int]]:
        return await asyncio.gather(*(raw_connection(port, token, worker * 1000 + c, deadline)
                                      for c in range(concurrency)))

    outcomes = asyncio.run(run())
    results.put((sum(o for o, _ in outcomes), sum(f for _, f in outcomes)))


def measure(clients: int, concurrency: int, seconds: float, client: str, stack: str) -> dict:
    """One run against a fresh emulator process: inserts served, failures, and the emulator's
    own CPU time per insert."""
    port = free_port()
    emulator = start_emulator(port, stack)
    try:
        results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        start_at = time.time() + 2.0
        procs = [multiprocessing.Process(
            target=client_process,
            args=(port, w, client, seconds, concurrency, start_at, results))
            for w in range(clients)]
        for p in procs:
            p.start()
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = cpu_seconds(emulator.pid)
        outcomes = [results.get(timeout=seconds + 60) for _ in procs]
        cpu_used = cpu_seconds(emulator.pid) - cpu_before
        for p in procs:
            p.join()
        counters = httpx.get(f"http://127.0.0.1:{port}/emulator/counters").json()
    finally:
        emulator.terminate()
        emulator.wait(10)
    ok = sum(o for o, _ in outcomes)
    return {"ok": ok, "failed": sum(f for _, f in outcomes), "rate": ok / seconds,
            "counted": counters["by_method_status"].get("calendar.events.insert", {}).get("200", 0),
            "cpu_us": cpu_used / max(ok, 1) * 1e6}


def run(clients: int = 2, concurrency: int = 16, seconds: float = 10.0, client: str = "raw"
        ) -> list[dict]:
    """The stack `syncd emulator` runs, beside uvicorn's pure-Python stack as the baseline."""
    from bench import row

    fast = measure(clients, concurrency, seconds, client, "auto")
    pure = measure(clients, concurrency, seconds, client, "pure")
    name = "emulator"
    return [
        row(name, f"events.insert served per second ({stack_name('auto')})", fast["rate"], "/s",
            baseline=pure["rate"], target=f">= {TARGET:.0f}", ok=fast["rate"] >= TARGET),
        row(name, "events.insert failed or miscounted", float(
            fast["failed"] + abs(fast["ok"] - fast["counted"])), "requests", target="= 0",
            ok=fast["failed"] == 0 and fast["ok"] == fast["counted"]),
        row(name, "emulator CPU per insert", fast["cpu_us"], "us", baseline=pure["cpu_us"]),
        row(name, "inserts/s one emulator core could serve", 1e6 / fast["cpu_us"], "/s",
            baseline=1e6 / pure["cpu_us"]),
    ]


def main() -> list[dict]:
    return run()


if __name__ == "__main__":
    from bench import show

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=16, help="connections per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    args = parser.parse_args()
    print(f"clients: {args.clients} processes x "
          f"{1 if args.client == 'httpx' else args.concurrency} {args.client} connections, "
          f"{args.seconds:.0f} s each stack, {os.cpu_count()} CPUs")
    show(run(args.clients, args.concurrency, args.seconds, args.client))
