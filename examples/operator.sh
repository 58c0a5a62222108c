#!/usr/bin/env bash
# Operator tasks with the CLI on a throwaway data directory.
# Usage: examples/operator.sh [path-to-audiostudio-binary]
set -euo pipefail
BIN=${1:-target/release/audiostudio}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

"$BIN" --data-dir "$DIR" migrate
# The password comes from stdin (or an interactive prompt), never from the command line.
printf 'violet kettle 9 tambourine\n' | "$BIN" --data-dir "$DIR" users create --email admin@example.com --admin
"$BIN" --data-dir "$DIR" users list
"$BIN" --data-dir "$DIR" audit verify
"$BIN" --data-dir "$DIR" config
