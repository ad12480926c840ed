#!/usr/bin/env bash
# Checks the README's first command on this clone: `make run` brings up the development network
# (PGO simulator, DVZA frontchannel and backchannel), which answers; then stops it with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
setsid make run >"$log" 2>&1 &
leader=$!
stop() { kill -TERM -- "-$leader" 2>/dev/null || true; wait "$leader" 2>/dev/null || true; }
trap stop EXIT
ca=var/pki/ca.pem
for _ in $(seq 1 180); do
  if grep -q "development network is running" "$log"; then break; fi
  if ! kill -0 "$leader" 2>/dev/null; then cat "$log"; echo "make run stopped early" >&2; exit 1; fi
  sleep 1
done
grep -q "development network is running" "$log" || { tail -50 "$log"; echo "make run did not come up" >&2; exit 1; }
resolve=(--resolve pgo.localhost:8444:127.0.0.1 --resolve dvza.localhost:8443:127.0.0.1
         --resolve dvza.localhost:9443:127.0.0.1)
# answers are read whole before grep looks: `curl | grep -q` fails under pipefail when grep stops reading early
# (curl: (23) Failed writing body)
page=$(curl -fsS --cacert "$ca" "${resolve[@]}" https://pgo.localhost:8444/)
grep -q "Gegevens ophalen" <<<"$page"
ready=$(curl -fsS --cacert "$ca" "${resolve[@]}" https://dvza.localhost:8443/readyz)
grep -q '"status":"ready"' <<<"$ready"
# the backchannel refuses a connection without a client certificate
if curl -fsS --cacert "$ca" "${resolve[@]}" https://dvza.localhost:9443/healthz >/dev/null 2>&1; then
  echo "backchannel answered without a client certificate" >&2; exit 1
fi
health=$(curl -fsS --cacert "$ca" "${resolve[@]}" --cert var/pki/pgo.localhost.pem --key var/pki/pgo.localhost-key.pem \
  https://dvza.localhost:9443/healthz)
grep -q ok <<<"$health"
echo "make run: development network up and answering"
