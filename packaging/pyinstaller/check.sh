#!/usr/bin/env bash
# Build the Linux one-folder app and prove it works: its `status --json` against its own
# simulator must say "ready" with exit 0. Run from the repository root (CI does).
set -euo pipefail
work=$(mktemp -d)
trap 'kill "${sim_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
pyinstaller --noconfirm --log-level ERROR --distpath "$work/dist" --workpath "$work/build" \
  packaging/pyinstaller/cpgw-tray.spec
app="$work/dist/cpgw-tray/cpgw-tray"
"$app" --version
"$app" sim --port 0 --state ready --no-rate-limit >"$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 50); do grep -q " on https://" "$work/sim.out" && break; sleep 0.2; done
url=$(sed -n 's/.* on \(https:[^ ]*\).*/\1/p' "$work/sim.out" | head -1)
out=$("$app" --url "$url" status --json)
echo "$out"
python - "$out" <<'PY'
import json, sys
status = json.loads(sys.argv[1])
assert status["state"] == "ready", status
PY
echo "packaged app: ok ($(du -sh "$work/dist/cpgw-tray" | cut -f1))"
