#!/usr/bin/env bash
# Runs build/plain/mockupstream under valgrind (memcheck, following the workers) through a short
# mixed workload: HTTP/1.1 with curl and wrk, HTTP/2 with h2load, TLS HTTP/1.1 (the project's own
# OpenSSL path) and TLS HTTP/2 (h2o's), clients that leave while their request is held, then SIGTERM. Fails if valgrind reports errors or definite leaks; an error in a
# worker also shows in the master's exit status (a worker exiting 97 fails the drain).
#   tests/valgrind.sh [BINARY]
set -euo pipefail
bin=${1:-build/plain/mockupstream}
log=$(mktemp -d)/valgrind
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tls_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -keyout "$log.key" -out "$log.crt" 2>/dev/null
# the server refuses unknown MOCKUPSTREAM_* variables, and the test harness sets its own
for name in $(env | grep -o '^MOCKUPSTREAM_[A-Z_]*'); do unset "$name"; done
valgrind --quiet --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --error-exitcode=97 --log-file="$log.%p" "$bin" --listen 127.0.0.1:$port --workers 1 --delay 2ms \
    --tls-listen 127.0.0.1:$tls_port --tls-cert "$log.crt" --tls-key "$log.key" &
server=$!
trap 'kill -KILL $server 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done

curl -sf -o /dev/null "http://127.0.0.1:$port/"
curl -sf -o /dev/null -X POST --data-binary @/etc/hostname "http://127.0.0.1:$port/wait/5"
curl -sf -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$port/stats"
curl -sf -o /dev/null --http2 "http://127.0.0.1:$port/metrics"
wrk -t1 -c20 -d2s "http://127.0.0.1:$port/" >/dev/null
curl -sfk -o /dev/null --http1.1 "https://127.0.0.1:$tls_port/wait/5"
curl -sfk -o /dev/null --http2 "https://127.0.0.1:$tls_port/"
wrk -t1 -c10 -d1s "https://127.0.0.1:$tls_port/" >/dev/null
wrk -t1 -c10 -d1s -H "Connection: close" "https://127.0.0.1:$tls_port/" >/dev/null
h2load -n 500 -c 4 -m 10 "http://127.0.0.1:$port/" | grep -q "500 succeeded"
timeout 0.5 h2load -n 100000 -c 4 -m 50 "http://127.0.0.1:$port/wait/500" >/dev/null || true
python3 - "$port" <<'PY'
import socket, struct, sys, time
for i in range(50):  # clients that leave while held: half close, half reset
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /wait/300 HTTP/1.1\r\nHost: x\r\n\r\n")
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
time.sleep(0.5)
PY

kill -TERM $server
status=0
wait $server || status=$?
trap - EXIT
reports=$(cat "$log".[0-9]* 2>/dev/null || true)
if [ "$status" != 0 ] || grep -qE "are definitely lost|Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched free" <<<"$reports"; then
    echo "valgrind: exit status $status"
    echo "$reports"
    exit 1
fi
echo "valgrind: clean (master and worker, $(ls "$log".[0-9]* | wc -l) processes)"
