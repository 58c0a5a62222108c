#!/usr/bin/env python3
"""Benchmark of the accounts API against the real release binary (a benchmark, not a test).

Prints:
  * login throughput and the server's RSS during a burst of N concurrent logins
    (argon2id at the default OWASP cost, 19 MiB per hash);
  * GET /api/auth/profile requests per second at 64 concurrent connections (wrk).

Usage: python3 bench/auth_bench.py [--binary target/release/audiostudio] [--logins 200]
Needs: a release build (cargo build --release) and wrk (apt-get install wrk) for part 2.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

PASSWORD = "violet kettle 9 tambourine"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/audiostudio")
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    workdir = tempfile.mkdtemp(prefix="audiostudio-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROCKET_")}
    env.update({
        "ROCKET_PORT": str(port),
        "RUST_LOG": "warn",
        # Lift the per-IP limits: every request of the benchmark comes from 127.0.0.1.
        "ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE": "1000000",
        "ROCKET_RATE_LIMIT_REGISTER_PER_HOUR": "1000000",
        "ROCKET_LOGIN_MAX_FAILURES": "1000000",
        "ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE": "100000000",
        "ROCKET_RATE_LIMIT_ACCOUNT_CHANGES_PER_HOUR": "100000000",
    })
    server = subprocess.Popen([binary, "serve"], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if call(base, "GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, body = call(base, "POST", "/api/auth/register",
                            {"email": "bench@example.com", "password": PASSWORD})
        assert status == 201, (status, body)
        token = body["access_token"]
        idle = rss_kib(server.pid, "VmRSS")

        # Part 1: a burst of concurrent logins.
        peak = [idle]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid, "VmRSS"))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        login = {"email": "bench@example.com", "password": PASSWORD}
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.logins) as pool:
            statuses = list(pool.map(lambda _: call(base, "POST", "/api/auth/login", login)[0],
                                     range(args.logins)))
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        after = rss_kib(server.pid, "VmRSS")
        ok = statuses.count(200)
        print(f"login burst: {args.logins} concurrent, {ok} OK, {elapsed:.2f} s, "
              f"{ok / elapsed:.1f} logins/s")
        print(f"server RSS: idle {idle / 1024:.1f} MiB, peak during burst {peak[0] / 1024:.1f} MiB "
              f"(growth {(peak[0] - idle) / 1024:.1f} MiB), after burst {after / 1024:.1f} MiB, "
              f"VmHWM {rss_kib(server.pid, 'VmHWM') / 1024:.1f} MiB")

        # Part 2: authenticated reads.
        wrk = shutil.which("wrk")
        if wrk is None:
            print("profile: skipped, wrk is not installed (apt-get install wrk)")
            return
        out = subprocess.run(
            [wrk, "-t2", "-c64", f"-d{args.seconds}s", "--latency",
             "-H", f"Authorization: Bearer {token}", base + "/api/auth/profile"],
            capture_output=True, text=True, check=True).stdout
        rps = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
        lat = [line.strip() for line in out.splitlines() if line.strip().startswith(("50%", "99%"))]
        errors = [line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
        print(f"GET /api/auth/profile at 64 connections: {rps.split()[-1]} requests/s; "
              f"latency {', '.join(lat)}" + (f"; {'; '.join(errors)}" if errors else ""))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
