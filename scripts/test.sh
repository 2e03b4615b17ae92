#!/usr/bin/env bash
# `npm test`: the tests on a fresh machine of this project's kind (Debian, as root; DESIGN.md section 7).
#   1. installs the Debian packages the chosen test projects use, when missing (apt-get update once);
#   2. makes sure Redis (127.0.0.1:6379) and NATS with JetStream (127.0.0.1:4222) answer, starting them as
#      the machine does, unless REDIS_URL / NATS_URL point elsewhere;
#   3. builds (tsc -b: the integration and end-to-end tests run the built services);
#   4. runs vitest with the arguments given, e.g. `--project integration`, a file, `--reporter=json ...`.
# Without --project it prepares for and runs every project (unit, integration, monitoring, e2e).
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test] %s\n' "$*" >&2; }

# ------------------------------------------------------------------ what the chosen projects need
projects=()
prev=''
for arg in "$@"; do
  case "$arg" in
    --project=*) projects+=("${arg#--project=}") ;;
  esac
  [ "$prev" = --project ] && projects+=("$arg")
  prev=$arg
done
[ ${#projects[@]} -eq 0 ] && projects=(unit integration monitoring e2e)
# a pattern (--project 'int*'): prepare for every project
case "${projects[*]}" in *[*?[]*) projects=(unit integration monitoring e2e) ;; esac
wants() {
  local p
  for p in "${projects[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}
for p in "${projects[@]}"; do
  case "$p" in unit | integration | monitoring | e2e) ;; *)
    log "unknown test project \"$p\": the projects are unit, integration, monitoring, e2e"
    exit 2
    ;;
  esac
done

# ------------------------------------------------------------------ 1. Debian packages
apt_updated=0
missing_tools=()
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    missing_tools+=("$*")
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null 2>&1 || log "warning: apt-get update failed"
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || {
    log "warning: apt-get install $* failed"
    return 1
  }
}
has() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ]; }

if wants integration || wants e2e; then
  # the machine's servers, and the binaries the tests start servers of their own from (testkit); the web page's
  # browser tests run on the distributed stack too
  has redis-server /usr/bin/redis-server || apt_install redis-server
  has nats-server /usr/sbin/nats-server || apt_install nats-server
fi
if wants integration || wants monitoring; then
  # promtool checks the monitoring files; prometheus scrapes the running services (test/integration)
  if ! has promtool /usr/bin/promtool || ! has prometheus /usr/bin/prometheus; then
    if apt_install --no-install-recommends prometheus; then
      # The package starts a Prometheus of its own on :9090; the tests run their own instances.
      if command -v systemctl >/dev/null 2>&1 && systemctl stop prometheus >/dev/null 2>&1; then :
      elif command -v service >/dev/null 2>&1; then service prometheus stop >/dev/null 2>&1 || true
      fi
    fi
  fi
fi
if wants e2e; then
  # the seed's WebSocket client runs in Debian's Chromium; Playwright drives it and downloads nothing
  [ -x /usr/bin/chromium ] || apt_install chromium
fi
if [ ${#missing_tools[@]} -gt 0 ]; then
  log "warning: not root, so these Debian packages were not installed: ${missing_tools[*]}"
  log "         (sudo apt-get install -y ${missing_tools[*]}); the tests that need them will fail and say so"
fi

# ------------------------------------------------------------------ 2. Redis and NATS
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local _
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  return 1
}

if wants integration || wants e2e; then
  if [ -n "${REDIS_URL:-}" ]; then
    log "Redis: REDIS_URL=$REDIS_URL"
  elif ! port_open 6379; then
    if [ "$(id -u)" = 0 ] && has redis-server /usr/bin/redis-server; then
      log "starting Redis on 127.0.0.1:6379"
      mkdir -p /var/lib/redis /var/log/redis
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
      wait_port 6379 || log "warning: Redis does not answer on 127.0.0.1:6379 (see /var/log/redis/ci.log)"
    else
      log "warning: Redis does not answer on 127.0.0.1:6379 and cannot be started here: start it, or set REDIS_URL"
    fi
  fi
  if [ -n "${NATS_URL:-}" ]; then
    log "NATS: NATS_URL=$NATS_URL"
  elif ! port_open 4222; then
    if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/nats-server ]; then
      log "starting NATS (JetStream) on 127.0.0.1:4222"
      mkdir -p /var/lib/nats-server
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
      wait_port 4222 || log "warning: NATS does not answer on 127.0.0.1:4222 (see /var/log/nats-server.log)"
    else
      log "warning: NATS does not answer on 127.0.0.1:4222 and cannot be started here: start it, or set NATS_URL"
    fi
  fi
fi

# ------------------------------------------------------------------ 3. build
if wants integration || wants e2e; then
  log "building (tsc -b)"
  npm run build --silent || {
    log "the build failed"
    exit 1
  }
fi

# ------------------------------------------------------------------ 4. vitest
exec node_modules/.bin/vitest run "$@"
