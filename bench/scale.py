#!/usr/bin/env python3
"""How cost grows with the data: spends, balance reads, `check` and the admin lists at 10k,
100k and 1M ledger rows, with 100k users (a benchmark, not a test).

    python3 bench/scale.py [--sizes 10000,100000,1000000] [--seconds 5] [--no-build]

For each size it seeds a fresh data dir: an admin and a spending user through the CLI,
100,000 more users written straight into SQLite (sharing one argon2 hash), and N one-token
spend rows in the spending user's ledger, each with its usage row, with the cached
balance, lot and lifetime figures kept consistent so that `audiostudio check` passes. Then
it starts the release server (synchronous = FULL, the default request log on) and prints:

  * `POST /api/tokens/use` and `GET /api/tokens/balance` throughput and p99 (wrk, c=64);
  * the database's growth per acknowledged spend, in bytes (after a checkpoint);
  * `audiostudio check` time on the grown database;
  * the latency of the admin console's list routes (median and worst of 20 calls) at
    each size: flat figures mean their queries walk indexes, not tables.
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the same tools, servers and wrk parsing)

USERS = 100_000
ADMIN = "admin@example.com"


def cli(binary, data, env, *args, stdin=""):
    out = subprocess.run([binary, "--data-dir", data, *args], input=stdin, env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        sys.exit(f"audiostudio {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def seed(binary, data, env, rows):
    cli(binary, data, env, "users", "create", "--email", compare.EMAIL, stdin=compare.PASSWORD + "\n")
    cli(binary, data, env, "users", "create", "--admin", "--email", ADMIN,
        stdin=compare.PASSWORD + "\n")
    cli(binary, data, env, "tokens", "grant", compare.EMAIL, str(compare.GRANT + rows),
        "--reason", "benchmark")
    db = sqlite3.connect(os.path.join(data, "audiostudio.db"))
    user, hash_ = db.execute("SELECT id, password_hash FROM users WHERE email = ?",
                             (compare.EMAIL,)).fetchone()
    lot, = db.execute("SELECT id FROM token_lots WHERE user_id = ?", (user,)).fetchone()
    now = int(time.time() * 1000)
    db.executemany(
        "INSERT INTO users (id, email, password_hash, email_verified_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ((f"00000000-0000-7000-8000-{i:012}", f"user{i:06}@example.com", hash_, now,
          now - i * 1000, now)
         for i in range(USERS)))
    start = compare.GRANT + rows
    lots = '[{"lot": %d, "amount": 1}]' % lot
    db.executemany(
        "INSERT INTO token_transactions (user_id, kind, amount, balance_after, feature,"
        " description, lots, created_at) VALUES (?, 'spend', -1, ?, 'text_to_speech', NULL, ?, ?)",
        ((user, start - i, lots, now - (rows - i) * 50) for i in range(1, rows + 1)))
    db.executemany(
        "INSERT INTO usage_analytics (user_id, event, tokens_used, metadata, feature, created_at)"
        " VALUES (?, 'tokens_spent', 1, '{}', 'text_to_speech', ?)",
        ((user, now - (rows - i) * 50) for i in range(1, rows + 1)))
    db.execute("UPDATE users SET token_balance = token_balance - ?,"
               " lifetime_spent = lifetime_spent + ? WHERE id = ?", (rows, rows, user))
    db.execute("UPDATE token_lots SET remaining = remaining - ? WHERE id = ?", (rows, lot))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return user


def db_figures(data):
    db = sqlite3.connect(os.path.join(data, "audiostudio.db"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, = db.execute("PRAGMA page_count").fetchone()
    size, = db.execute("PRAGMA page_size").fetchone()
    spends, = db.execute("SELECT COUNT(*) FROM token_transactions WHERE kind = 'spend'").fetchone()
    db.close()
    return pages * size, spends


def get(base, path, token):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
        status = resp.status
    return status, (time.perf_counter() - started) * 1000


def admin_lists(base, token, user):
    paths = [
        "/api/admin/users?limit=50",
        "/api/admin/users?limit=50&q=user0999",
        "/api/admin/users?limit=50&email=user050000@example.com",
        # The oldest user: without the trigram index, every user would be read.
        "/api/admin/users?limit=50&q=user000123@",
        # Matches every user: the newest window fills the page.
        "/api/admin/users?limit=50&q=example.com",
        # Two characters: too short for trigrams, read by scan (it fills the page at once).
        "/api/admin/users?limit=50&q=r0",
        # Two characters matching no one: the one search that still reads every user.
        "/api/admin/users?limit=50&q=zq",
        "/api/admin/users?limit=50&status=active&verified=true",
        f"/api/admin/users/{user}",
        f"/api/admin/users/{user}/ledger?limit=50",
        f"/api/admin/users/{user}/activity?limit=50",
        f"/api/admin/users/{user}/lots",
        "/api/admin/audit?limit=50",
        "/api/admin/overview",
    ]
    figures = []
    for path in paths:
        times = []
        for _ in range(20):
            status, ms = get(base, path, token)
            if status != 200:
                sys.exit(f"GET {path}: {status}")
            times.append(ms)
        figures.append((path, statistics.median(times), max(times)))
    return figures


def run_size(binary, rows, seconds, workdir):
    data = os.path.join(workdir, f"data-{rows}")
    # The admin signs in with a password alone, to call the admin API with a bearer token.
    extra = {"ROCKET_MFA_REQUIRED_FOR_ADMINS": "false"}
    env = compare.clean_env(extra)
    t = time.monotonic()
    user = seed(binary, data, env, rows)
    seed_s = time.monotonic() - t
    size_before, spends_before = db_figures(data)
    server, base, data, env, requests = compare.start_audiostudio(
        binary, workdir, data=data, provision=False, extra=extra)
    try:
        status, body = compare.call(base, "POST", "/api/auth/login",
                                    {"email": ADMIN, "password": compare.PASSWORD})
        assert status == 200, (status, body)
        admin = body["access_token"]
        use = compare.wrk(base + requests["write"][0], requests["write"][1], seconds, 64)
        balance = compare.wrk(base + requests["read"][0], requests["read"][1], seconds, 64)
        lists = admin_lists(base, admin, user)
    finally:
        server.stop()
    size_after, spends_after = db_figures(data)
    t = time.monotonic()
    check = subprocess.run([binary, "--data-dir", data, "check"], env=env,
                           capture_output=True, text=True)
    check_s = time.monotonic() - t
    spent = spends_after - spends_before
    return {
        "rows": rows, "seed_s": seed_s, "use": use, "balance": balance, "lists": lists,
        "bytes_per_spend": (size_after - size_before) / max(spent, 1), "spent": spent,
        "db_mib": size_after / 2**20, "check_s": check_s,
        "check": (check.stdout + check.stderr).strip().splitlines()[-1:],
        "check_rc": check.returncode,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    binary, _, _ = compare.ensure_tools(args.no_build)
    workdir = tempfile.mkdtemp(prefix="audiostudio-scale-")
    results = []
    try:
        for rows in (int(s) for s in args.sizes.split(",")):
            print(f"seeding and measuring {rows:,} ledger rows with {USERS:,} users", flush=True)
            results.append(run_size(binary, rows, args.seconds, workdir))
    finally:
        subprocess.run(["rm", "-rf", workdir])
    print(f"\n{'ledger rows':>12} | {'use':>22} | {'balance':>22} | {'bytes/spend':>11} | "
          f"{'check':>8} | {'db':>9}")
    for r in results:
        u, b = r["use"], r["balance"]
        print(f"{r['rows']:>12,} | {u['rps']:>8,.0f}/s p99 {u['p99']:6.2f} ms | "
              f"{b['rps']:>8,.0f}/s p99 {b['p99']:6.2f} ms | {r['bytes_per_spend']:>11,.0f} | "
              f"{r['check_s']:>6.2f} s | {r['db_mib']:>5.0f} MiB")
    for r in results:
        failed = r["use"]["failed"] + r["balance"]["failed"]
        print(f"{r['rows']:,} rows: {r['spent']:,} spends acknowledged, {failed} failed answers; "
              f"check exit {r['check_rc']}: {' '.join(r['check'])}")
    print(f"\nadmin list routes with {USERS:,} users, median / worst of 20 calls, by ledger rows:")
    print("  " + " | ".join(f"{r['rows']:>17,}" for r in results) + " | route")
    for i, (path, _, _) in enumerate(results[0]["lists"]):
        cells = " | ".join(f"{r['lists'][i][1]:6.2f} / {r['lists'][i][2]:6.2f}" for r in results)
        print(f"  {cells} | GET {path}")

if __name__ == "__main__":
    main()
