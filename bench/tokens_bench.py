#!/usr/bin/env python3
"""Benchmark of the token API against the real release binary (a benchmark, not a test).

For each SQLite `synchronous` mode (FULL, NORMAL), on a fresh data directory:
  * creates a user and grants it a large balance through the CLI, starts the server, logs in;
  * runs wrk at 64 connections against GET /api/tokens/balance on the fresh ledger, then
    POST /api/tokens/use (1 token of text_to_speech per request), then
    GET /api/tokens/balance again, now over a ledger with one row per spend;
  * prints requests/s, p50 and p99 latency and the non-2xx count, one line per
    (mode, endpoint); stops the server and prints what `audiostudio check` says.

Usage: python3 bench/tokens_bench.py [--binary target/release/audiostudio] [--seconds 10]
Needs: a release build (cargo build --release; this script builds nothing) and wrk
(apt-get install wrk). wrk, the server and SQLite share the machine's cores.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PASSWORD = "violet kettle 9 tambourine"
EMAIL = "bench@example.com"
GRANT = 100_000_000
CONNECTIONS = 64


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None, timeout=60):
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


def clean_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROCKET_", "AUDIOSTUDIO_"))
           and k not in ("JWT_SECRET", "SMTP_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")}
    env["RUST_LOG"] = "warn"
    env.update(extra)
    return env


def cli(binary, data, args, env, stdin=""):
    return subprocess.run([binary, "--data-dir", data, *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


def wrk(seconds, url, token=None, script=None):
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    elif token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    figures = {"rps": "?", "p50": "?", "p99": "?", "non2xx": 0, "socket": "", "requests": "?"}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec"):
            figures["rps"] = s.split()[-1]
        elif s.startswith("50%"):
            figures["p50"] = s.split()[-1]
        elif s.startswith("99%"):
            figures["p99"] = s.split()[-1]
        elif s.startswith("Non-2xx"):
            figures["non2xx"] = int(s.split()[-1])
        elif s.startswith("Socket errors"):
            figures["socket"] = s
        elif "requests in" in s:
            figures["requests"] = s.split()[0]
    return figures, out


def ledger_rows(base, token):
    """Rows in the user's ledger: 1 grant plus one per spend, read from the balance."""
    status, balance = call(base, "GET", "/api/tokens/balance", token=token)
    assert status == 200, (status, balance)
    return 1 + (GRANT - balance["balance"])


def run_mode(binary, mode, seconds, verbose):
    workdir = tempfile.mkdtemp(prefix=f"audiostudio-tokens-bench-{mode.lower()}-")
    data = os.path.join(workdir, "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env({
        "ROCKET_SYNCHRONOUS": mode,
        "ROCKET_PORT": str(port),
        # The benchmark logs in once; a long-lived access token covers the whole run.
        "ROCKET_ACCESS_TOKEN_TTL_SECS": "3600",
        # One user from one address measures throughput: lift the per-user and per-IP limits.
        "ROCKET_RATE_LIMIT_TOKEN_MUTATIONS_PER_MINUTE": "100000000",
        "ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE": "100000000",
    })
    server = log = None
    try:
        out = cli(binary, data, ["users", "create", "--email", EMAIL], env, PASSWORD + "\n")
        assert out.returncode == 0, out
        out = cli(binary, data, ["tokens", "grant", EMAIL, str(GRANT), "--reason", "benchmark"], env)
        assert out.returncode == 0, out
        log = open(os.path.join(workdir, "server.log"), "w")
        server = subprocess.Popen([binary, "--data-dir", data, "serve"], cwd=workdir, env=env,
                                  stdout=log, stderr=log)
        deadline = time.time() + 60
        while True:
            try:
                if call(base, "GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start; see {workdir}/server.log")
            time.sleep(0.1)
        status, body = call(base, "POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
        assert status == 200, (status, body)
        token = body["access_token"]

        script = os.path.join(workdir, "use.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\n'
                    'wrk.body = \'{"amount":1,"feature":"text_to_speech"}\'\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.headers["Authorization"] = "Bearer {token}"\n')
        # GET /balance once on a fresh ledger (one grant row) and once after the spends:
        # the balance read sums the user's ledger, so its cost grows with the history.
        runs = [
            ("GET /api/tokens/balance", "fresh ledger",
             wrk(seconds, base + "/api/tokens/balance", token=token)),
            ("POST /api/tokens/use", "",
             wrk(seconds, base + "/api/tokens/use", script=script)),
        ]
        rows = ledger_rows(base, token)
        runs.append(("GET /api/tokens/balance", f"after {rows} ledger rows",
                     wrk(seconds, base + "/api/tokens/balance", token=token)))
        for endpoint, note, (fig, raw) in runs:
            extra = f"; {fig['socket']}" if fig["socket"] else ""
            note = f"  ({note})" if note else ""
            print(f"{mode:6} {endpoint:24} {fig['rps']:>10} req/s  p50 {fig['p50']:>8}  "
                  f"p99 {fig['p99']:>8}  non-2xx {fig['non2xx']} of {fig['requests']}{extra}{note}",
                  flush=True)
            if verbose:
                print(raw)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                code = server.wait()
                print(f"{mode:6} the server did not stop on SIGTERM within 30 s; killed", flush=True)
            else:
                if code != 0:
                    print(f"{mode:6} the server exited {code} after SIGTERM", flush=True)
        if log is not None:
            log.close()
        if os.path.isdir(data):
            check = cli(binary, data, ["check"], env)
            text = (check.stdout + check.stderr).strip().replace("\n", " | ")
            print(f"{mode:6} audiostudio check: exit {check.returncode}: {text}", flush=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="target/release/audiostudio")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--modes", default="FULL,NORMAL")
    ap.add_argument("--verbose", action="store_true", help="print wrk's full output")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: run `cargo build --release` first")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    print(f"binary {binary}, {os.cpu_count()} CPUs, wrk -t2 -c{CONNECTIONS} -d{args.seconds}s", flush=True)
    for mode in args.modes.split(","):
        run_mode(binary, mode.strip().upper(), args.seconds, args.verbose)


if __name__ == "__main__":
    main()
