#!/usr/bin/env bash
# Starts the built server exactly as the container does (`node <flags> dist/main.js`, configured by IOASD_*
# variables), on 127.0.0.1 and a port it picks, checks health, readiness, the topology page and the
# served OpenAPI document and the built ioasctl's `why` and `events`, then stops it with SIGTERM and expects a clean exit.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
log="$work/server.log"
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

IOASD_HOST=127.0.0.1 IOASD_PORT=0 IOASD_DB="$work/data/ioasd.db" NODE_ENV=production node --min-semi-space-size=16 --max-semi-space-size=64 dist/main.js >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  url=$(grep -o 'Server listening at http://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 | sed 's/Server listening at //') || true
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "smoke: server exited early"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "smoke: server did not start"; exit 1; }

node -e "
const base = process.argv[1];
const committed = JSON.parse(require('fs').readFileSync('openapi/openapi.json', 'utf8'));
(async () => {
  // The topology page's files are copied into dist by the build: the built server must serve them.
  for (const path of ['/healthz', '/readyz', '/ui', '/ui/app.js', '/ui/sse.js', '/ui/why.js', '/ui/style.css']) {
    const r = await fetch(base + path);
    if (!r.ok) throw new Error(path + ' answered ' + r.status);
  }
  const served = await (await fetch(base + '/openapi.json')).json();
  if (JSON.stringify(served) !== JSON.stringify(committed)) throw new Error('served OpenAPI differs from openapi/openapi.json');
})().catch((e) => { console.error('smoke:', e.message); process.exit(1); });
" "$url"
test -f "$work/data/admin.token" || { echo "smoke: no admin.token"; exit 1; }
# The built ioasctl's `why` runs the page's module from dist/http/ui: the demo VF on iavf is blocked (exit 5).
why=$(IOASD_URL="$url" IOASD_TOKEN_FILE="$work/data/admin.token" node dist/cli/ioasctl.js why 0000:02:01.3) && status=0 || status=$?
[ "$status" = 5 ] && grep -q 'bound to the kernel driver iavf' <<<"$why" || { echo "$why"; echo "smoke: ioasctl why exited $status"; exit 1; }
# Its `events` reads the stream with the page's sse.js from dist/http/ui: the first kept event, then it stops.
events=$(IOASD_URL="$url" IOASD_TOKEN_FILE="$work/data/admin.token" timeout 30 node dist/cli/ioasctl.js events --after 0 --count 1) && status=0 || status=$?
[ "$status" = 0 ] && grep -q '^1  .*topology\.imported' <<<"$events" || { echo "$events"; echo "smoke: ioasctl events exited $status"; exit 1; }

kill -TERM "$pid"
wait "$pid"
echo "smoke: node dist/main.js (the container command) started, answered and stopped cleanly"
