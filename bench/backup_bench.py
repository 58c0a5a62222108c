#!/usr/bin/env python3
"""Backup time and size for a database with N ledger rows (default 1,000,000).

Seeds a throwaway data dir: one user (through the CLI) granted 2N tokens, then N spend rows
of one token written straight into SQLite with the cached balance, lot and lifetime figures
kept consistent (so `backup`'s ledger check passes). Then times `audiostudio backup` with
the online backup API and with VACUUM INTO, and `backup --verify`.

Usage: python3 bench/backup_bench.py [path-to-audiostudio] [rows]
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/audiostudio"
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ROCKET_", "AUDIOSTUDIO_"))}


def cli(data, *args, stdin=None):
    return subprocess.run([BIN, "--data-dir", data, *args], input=stdin, env=ENV,
                          capture_output=True, text=True, check=True).stdout


def seed(data):
    cli(data, "users", "create", "--email", "bench@example.com", stdin="violet kettle 9 tambourine\n")
    cli(data, "tokens", "grant", "bench@example.com", str(2 * ROWS), "--reason", "bench")
    db = sqlite3.connect(os.path.join(data, "audiostudio.db"))
    user, = db.execute("SELECT id FROM users").fetchone()
    lot, = db.execute("SELECT id FROM token_lots WHERE user_id = ?", (user,)).fetchone()
    start = 2 * ROWS
    now = int(time.time() * 1000)
    lots = '[{"lot": %d, "amount": 1}]' % lot
    db.executemany(
        "INSERT INTO token_transactions (user_id, kind, amount, balance_after, feature, description, lots, created_at)"
        " VALUES (?, 'spend', -1, ?, 'text_to_speech', 'bench', ?, ?)",
        ((user, start - i, lots, now) for i in range(1, ROWS + 1)))
    db.execute("UPDATE users SET token_balance = token_balance - ?, lifetime_spent = lifetime_spent + ? WHERE id = ?",
               (ROWS, ROWS, user))
    db.execute("UPDATE token_lots SET remaining = remaining - ? WHERE id = ?", (ROWS, lot))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def timed(data, *args):
    started = time.monotonic()
    out = cli(data, *args)
    return time.monotonic() - started, out.strip().splitlines()[-1]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        t = time.monotonic()
        seed(data)
        size = os.path.getsize(os.path.join(data, "audiostudio.db"))
        print(f"seeded {ROWS} ledger rows in {time.monotonic() - t:.1f} s; database {size / 2**20:.1f} MiB")
        for method in ("backup-api", "vacuum-into"):
            dest = os.path.join(tmp, f"{method}.db")
            secs, last = timed(data, "backup", dest, "--method", method)
            print(f"backup ({method}): {secs:.2f} s including verify, {os.path.getsize(dest) / 2**20:.1f} MiB; {last}")
        secs, _ = timed(data, "backup", "--verify", os.path.join(tmp, "backup-api.db"))
        print(f"verify alone: {secs:.2f} s")
        check = cli(data, "check").strip()
        print(check)


if __name__ == "__main__":
    main()
