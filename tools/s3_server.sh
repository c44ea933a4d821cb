#!/usr/bin/env bash
# A real S3-compatible server on the loopback for tests/remote.rs and tools/bench_remote.py:
# moto's server mode (PyPI `moto[server]`), in its own virtualenv.
#   tools/s3_server.sh start [PORT]   install if needed, start, create the bucket `hhi-test`
#   tools/s3_server.sh stop [PORT]
# Then: HHI_TEST_S3=http://127.0.0.1:PORT (default 9390). The virtualenv is /opt/hhi-s3
# unless HHI_S3_VENV names another (a user who cannot write /opt).
set -euo pipefail
cmd=${1:-start}
port=${2:-9390}
venv=${HHI_S3_VENV:-/opt/hhi-s3}
pidfile=/tmp/hhi-s3-$port.pid
case "$cmd" in
start)
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv" 2>/dev/null || {
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    }
    "$venv/bin/pip" install -q 'moto[server]' >/dev/null
  fi
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "moto already running on 127.0.0.1:$port"
  else
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"/tmp/hhi-s3-$port.log" 2>&1 &
    echo $! >"$pidfile"
  fi
  # Wait for it to answer, then create the bucket (moto does not check signatures, so an
  # unsigned PUT does).
  python3 - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/"
for _ in range(150):
    try:
        urllib.request.urlopen(url, timeout=1)
        break
    except Exception:
        time.sleep(0.2)
else:
    sys.exit(f"moto did not answer on {url}")
urllib.request.urlopen(urllib.request.Request(url + "hhi-test", method="PUT"), timeout=5)
PY
  echo "S3 (moto) on http://127.0.0.1:$port, bucket hhi-test"
  ;;
stop)
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  ;;
*)
  echo "usage: $0 start|stop [PORT]" >&2
  exit 2
  ;;
esac
