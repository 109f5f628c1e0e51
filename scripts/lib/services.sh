# PostgreSQL and Redis for the tests: sourced, not run, after common.sh.
#
#   source scripts/lib/common.sh
#   source scripts/lib/services.sh
#   ensure_postgres   # exports MCPSHIP_TEST_POSTGRES_URL
#   ensure_redis      # exports MCPSHIP_TEST_REDIS_URL
#
# Each one uses a server already answering on its usual loopback port (or at
# the URL already exported), and otherwise starts a private server on a free
# port, from the installed binaries or from packages installed with apt-get.
# Private servers live in a temporary directory and are stopped by
# `stop_private_services`, which the first private start adds to the EXIT trap.
# Call the functions directly, not in `$(…)`: the exports must reach the caller.
#
# MCPSHIP_FORCE_PRIVATE_SERVICES=1 ignores running servers and always starts
# private ones: it is how the fallback gets tested on a machine that has both.
#
# When no server can be had, CI=true exits non-zero; elsewhere the function
# warns and returns 1, and the tests that need the server fail on their own.

[ -n "${ROOT:-}" ] || {
  echo "services.sh: source scripts/lib/common.sh first" >&2
  return 1
}

_MCPSHIP_SERVICES_DIR=""
_MCPSHIP_PG_DATA=""
_MCPSHIP_PG_BIN=""
_MCPSHIP_PG_USER=""
_MCPSHIP_REDIS_PIDFILE=""
_MCPSHIP_REDIS_PORT=""

_services_forced() { [ "${MCPSHIP_FORCE_PRIVATE_SERVICES:-0}" = 1 ]; }

# Ends the function's caller on CI, where a missing service is a broken setup;
# elsewhere only warns.
_service_unavailable() {
  if [ "${CI:-}" = true ]; then
    die "$1 (CI=true: the tests need it; install it or export its URL)"
  fi
  printf 'warning: %s; tests that need it will fail\n' "$1" >&2
  return 1
}

# The directory private servers keep their files in, created on first use.
# World-traversable, because PostgreSQL runs as another user when we are root.
_services_dir() {
  if [ -z "$_MCPSHIP_SERVICES_DIR" ]; then
    _MCPSHIP_SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mcpship-services.XXXXXX")" || return 1
    chmod 755 "$_MCPSHIP_SERVICES_DIR"
  fi
}

_third_word() { printf '%s' "$3"; }

# Adds stop_private_services to the EXIT trap, keeping whatever is there.
_services_trap() {
  local existing
  existing="$(trap -p EXIT)"
  case "$existing" in *stop_private_services*) return 0 ;; esac
  if [ -n "$existing" ]; then
    # `trap -p` prints `trap -- 'command' EXIT`, quoted for re-parsing.
    local previous
    previous="$(eval "_third_word $existing")"
    # shellcheck disable=SC2064 # expanded now on purpose: the old command.
    trap "stop_private_services; $previous" EXIT
  else
    trap stop_private_services EXIT
  fi
}

# apt-get install, as root or through sudo. Used only when binaries are missing.
_services_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || return 1
    sudo="sudo -n"
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  log "installing $* with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
    && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# Runs a command as the unprivileged user PostgreSQL needs (it refuses to run
# as root), or as ourselves when we are not root.
_as_pg_user() {
  if [ -z "$_MCPSHIP_PG_USER" ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$_MCPSHIP_PG_USER" -- "$@"
  else
    su -s /bin/sh "$_MCPSHIP_PG_USER" -c "$(printf '%q ' "$@")"
  fi
}

# The newest installed PostgreSQL server bin directory (Debian layout), or the
# one holding `initdb` on PATH.
_pg_bindir() {
  local dir best=""
  # sort -V: the glob alone would put 9 after 15.
  while IFS= read -r dir; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && best="$dir"
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
  if [ -z "$best" ] && command -v initdb >/dev/null 2>&1; then
    best="$(dirname "$(command -v initdb)")"
  fi
  [ -n "$best" ] && echo "$best"
}

_pg_answers() {
  # $1: a connection URL.
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$1" -t 3
  else
    local bindir
    bindir="$(_pg_bindir)" && [ -x "$bindir/pg_isready" ] && "$bindir/pg_isready" -q -d "$1" -t 3
  fi
}

_start_private_postgres() {
  local bindir port dir locale
  bindir="$(_pg_bindir)" || { _services_install postgresql && bindir="$(_pg_bindir)"; } \
    || { _service_unavailable "PostgreSQL is not running on 127.0.0.1:5432 and could not be installed"; return 1; }
  _services_dir || { _service_unavailable "could not create a directory for PostgreSQL"; return 1; }
  dir="$_MCPSHIP_SERVICES_DIR/postgres"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then _MCPSHIP_PG_USER=postgres; else _MCPSHIP_PG_USER=nobody; fi
    chown "$_MCPSHIP_PG_USER" "$dir"
  fi
  # A UTF-8 locale, so the server's case folding and character classes match
  # a typical production server's; C if the machine has none.
  locale="C"
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale="C.UTF-8"; fi
  port="$(free_port)"
  log "starting a private PostgreSQL ($bindir) on 127.0.0.1:$port"
  _as_pg_user "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --locale="$locale" --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; _service_unavailable "initdb failed"; return 1; }
  _MCPSHIP_PG_BIN="$bindir"
  _MCPSHIP_PG_DATA="$dir/data"
  _services_trap
  # fsync off: throwaway data, and the tests create a database each.
  _as_pg_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
    start >/dev/null \
    || { cat "$dir/server.log" >&2; _service_unavailable "the private PostgreSQL did not start"; return 1; }
  export MCPSHIP_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# Exports MCPSHIP_TEST_POSTGRES_URL for a PostgreSQL that answers.
ensure_postgres() {
  if ! _services_forced; then
    local url="${MCPSHIP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    if _pg_answers "$url"; then
      export MCPSHIP_TEST_POSTGRES_URL="$url"
      log "using PostgreSQL at ${url%%\?*}"
      return 0
    fi
  fi
  [ -n "$_MCPSHIP_PG_DATA" ] && _pg_answers "${MCPSHIP_TEST_POSTGRES_URL:-}" && return 0
  _start_private_postgres
}

_redis_answers() {
  # $1: port.
  [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

_start_private_redis() {
  local port dir
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    _services_install redis-server \
      || { _service_unavailable "Redis is not running on 127.0.0.1:6379 and could not be installed"; return 1; }
  fi
  _services_dir || { _service_unavailable "could not create a directory for Redis"; return 1; }
  dir="$_MCPSHIP_SERVICES_DIR/redis"
  mkdir -p "$dir"
  port="$(free_port)"
  log "starting a private Redis on 127.0.0.1:$port"
  _MCPSHIP_REDIS_PIDFILE="$dir/redis.pid"
  _MCPSHIP_REDIS_PORT="$port"
  _services_trap
  # No persistence: nothing here should outlive the run.
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/server.log" --dir "$dir" \
    || { _service_unavailable "redis-server failed to start"; return 1; }
  local deadline=$(( $(date +%s) + 15 ))
  until _redis_answers "$port"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      cat "$dir/server.log" >&2 2>/dev/null
      _service_unavailable "the private Redis did not answer on port $port"
      return 1
    fi
    sleep 0.1
  done
  export MCPSHIP_TEST_REDIS_URL="redis://127.0.0.1:$port"
}

# Exports MCPSHIP_TEST_REDIS_URL for a Redis that answers.
ensure_redis() {
  if ! _services_forced; then
    if [ -n "${MCPSHIP_TEST_REDIS_URL:-}" ]; then
      # An explicit URL wins: trust it, since redis-cli cannot check every form
      # (TLS, passwords) the tests may be given.
      log "using Redis at the given MCPSHIP_TEST_REDIS_URL"
      return 0
    fi
    if command -v redis-cli >/dev/null 2>&1 && _redis_answers 6379; then
      export MCPSHIP_TEST_REDIS_URL="redis://127.0.0.1:6379"
      log "using Redis at 127.0.0.1:6379"
      return 0
    fi
  fi
  [ -n "$_MCPSHIP_REDIS_PORT" ] && _redis_answers "$_MCPSHIP_REDIS_PORT" && return 0
  _start_private_redis
}

# Stops the servers ensure_* started (never ones that were already running)
# and removes their files. Safe to call more than once and from a trap.
stop_private_services() {
  if [ -n "$_MCPSHIP_PG_DATA" ]; then
    _as_pg_user "$_MCPSHIP_PG_BIN/pg_ctl" -D "$_MCPSHIP_PG_DATA" -m immediate -w stop \
      >/dev/null 2>&1 || true
    _MCPSHIP_PG_DATA=""
  fi
  if [ -n "$_MCPSHIP_REDIS_PIDFILE" ]; then
    local pid
    pid="$(cat "$_MCPSHIP_REDIS_PIDFILE" 2>/dev/null || true)"
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      # Let it go before its directory does.
      local _
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    _MCPSHIP_REDIS_PIDFILE=""
    _MCPSHIP_REDIS_PORT=""
  fi
  if [ -n "$_MCPSHIP_SERVICES_DIR" ]; then
    rm -rf "$_MCPSHIP_SERVICES_DIR"
    _MCPSHIP_SERVICES_DIR=""
  fi
  return 0
}
