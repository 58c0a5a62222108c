#!/usr/bin/env bash
# Walk through the accounts API with curl against a running server.
# Usage: examples/api_quickstart.sh [base-url]   (default http://127.0.0.1:8000)
# Needs curl and python3 (to read JSON).
set -euo pipefail
BASE=${1:-http://127.0.0.1:8000}
EMAIL="demo-$(date +%s)@example.com"
PASSWORD="violet kettle 9 tambourine"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "== health"; curl -fsS "$BASE/health"; echo

echo "== register $EMAIL"
REG=$(curl -fsS -X POST "$BASE/api/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"display_name\":\"Demo\"}")
ACCESS=$(echo "$REG" | json "['access_token']")
REFRESH=$(echo "$REG" | json "['refresh_token']")

echo "== profile"; curl -fsS "$BASE/api/auth/profile" -H "authorization: Bearer $ACCESS"; echo

echo "== update profile"
curl -fsS -X PUT "$BASE/api/auth/profile" -H "authorization: Bearer $ACCESS" \
  -H 'content-type: application/json' -d '{"bio":"Makes beats","preferences":{"theme":"dark"}}'; echo

echo "== refresh (the old refresh token is used up)"
PAIR=$(curl -fsS -X POST "$BASE/api/auth/refresh" -H 'content-type: application/json' \
  -d "{\"refresh_token\":\"$REFRESH\"}")
ACCESS=$(echo "$PAIR" | json "['access_token']")

echo "== sessions"; curl -fsS "$BASE/api/auth/sessions" -H "authorization: Bearer $ACCESS"; echo

echo "== token balance (grant some with: audiostudio tokens grant $EMAIL 100 --reason demo)"
curl -fsS "$BASE/api/tokens/balance" -H "authorization: Bearer $ACCESS"; echo

echo "== spending without tokens is a 402 problem; the Idempotency-Key makes a retry safe"
curl -sS -X POST "$BASE/api/tokens/use" -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' \
  -H "idempotency-key: quickstart-$(date +%s)" -d '{"amount":5,"feature":"text_to_speech"}'; echo

echo "== a wrong password is a problem document"
curl -sS -X POST "$BASE/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"not it at all\"}"; echo

echo "== logout"; curl -fsS -o /dev/null -w '%{http_code}\n' -X POST "$BASE/api/auth/logout" -H "authorization: Bearer $ACCESS"
