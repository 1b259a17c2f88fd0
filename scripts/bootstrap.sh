#!/usr/bin/env bash
# Brings a fresh checkout to the state `npm start`, `npm test` and `npm run bench` need,
# doing only what is missing: dependencies (npm ci), the native SQLite module, the build,
# and the system tor. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

# --quiet: no progress lines. --test: also what only the tests need (Debian's chromium and
# PostgreSQL server binaries).
quiet=0
for_tests=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --test) for_tests=1 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: $*" >&2; exit 1; }
# Installs a Debian package; on failure refreshes the package lists once and tries again.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2; }
}

# Node 20.17 or newer (sqlite3 6 and crypto.hash need it).
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)' \
  || die "Node.js >= 20.17 is required (found $(node --version))"

# 1. Dependencies: npm ci when node_modules is missing or was installed from another lock file.
lock_hash=$(node -e 'process.stdout.write(require("crypto").createHash("sha256").update(require("fs").readFileSync("package-lock.json")).digest("hex"))')
stamp=node_modules/.p2pdb-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  say "installing dependencies (npm ci): about two minutes on a fresh clone, npm says when it is done"
  # granax (later) must never download Tor Browser: Debian's tor is the one we run.
  GRANAX_USE_SYSTEM_TOR=1 npm ci --no-audit --no-fund >&2 &
  npm_pid=$!
  # A background job of a script ignores Ctrl-C: pass it on, or npm would go on alone.
  trap 'kill "$npm_pid" 2>/dev/null; exit 130' INT TERM
  # npm prints nothing until it is done: a line every 20 s shows it is still working.
  started=$SECONDS
  next=20
  while kill -0 "$npm_pid" 2>/dev/null; do
    sleep 1
    elapsed=$((SECONDS - started))
    if [ "$elapsed" -ge "$next" ] && kill -0 "$npm_pid" 2>/dev/null; then
      say "still installing dependencies (${elapsed} s)"
      next=$((next + 20))
    fi
  done
  wait "$npm_pid"
  trap - INT TERM
  echo "$lock_hash" > "$stamp"
fi

# 2. The native SQLite module must really load: npm 11 has been seen skipping install scripts.
if ! node -e 'const s=require("sqlite3"); new s.Database(":memory:").close()' 2>/dev/null; then
  say "sqlite3's native module did not load; building it (node-gyp, takes a few minutes)"
  npm rebuild sqlite3 --foreground-scripts >&2
  node -e 'const s=require("sqlite3"); new s.Database(":memory:").close()' \
    || die "sqlite3's native module still does not load; see the npm output above"
fi

# 3. Build when any source is newer than the last build.
build_stamp=dist/.build-stamp
if [ ! -f "$build_stamp" ] || [ -n "$(find src test scripts examples tsconfig.json tsconfig.web.json package.json -newer "$build_stamp" -type f -print -quit)" ]; then
  say "building (tsc)"
  rm -rf dist
  npx tsc -p tsconfig.json >&2
  say "building the browser app (esbuild)"
  node scripts/build-web.mjs >&2
  touch "$build_stamp"
fi

# 4. The system tor (Debian's), for onion services. Not needed while a node runs with Tor off.
if ! command -v tor >/dev/null 2>&1; then
  if [ "${P2PDB_SKIP_TOR_INSTALL:-}" = 1 ]; then
    say "tor is not installed (P2PDB_SKIP_TOR_INSTALL=1: not installing it)"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing tor (apt-get)"
    if ! apt_install tor; then
      say "could not install tor; nodes can still run with Tor off"
    fi
    # Debian starts a system tor service on install; p2pdb runs its own tor processes.
    command -v systemctl >/dev/null 2>&1 && systemctl disable --now tor >/dev/null 2>&1 || true
  else
    say "tor is not installed: run 'sudo apt-get install -y tor' to publish the node as an onion service"
  fi
fi

# 5. Debian's chromium, which the browser-app tests drive (playwright-core never downloads a browser).
#    Only for `npm test`: a node operator's `npm start` must not pull in a browser.
if [ "$for_tests" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "${P2PDB_SKIP_BROWSER_INSTALL:-}" = 1 ]; then
    say "chromium is not installed (P2PDB_SKIP_BROWSER_INSTALL=1: not installing it; the browser tests will say so)"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (apt-get), for the browser-app tests"
    if ! apt_install chromium; then
      say "could not install chromium; the browser-app tests cannot run"
    fi
  else
    say "chromium is not installed: run 'sudo apt-get install -y chromium' to run the browser-app tests"
  fi
fi

# 6. PostgreSQL's server binaries (Debian's postgresql), for the PostgreSQL backend's tests. Tests
#    start throwaway servers of their own (src/store/postgres/local-server.ts) on 127.0.0.1 and
#    never use a system service, so the cluster Debian's package creates is stopped and kept from
#    starting again. Only for `npm test`.
have_postgres_server() {
  local d IFS=:
  # The same places local-server.ts looks: P2PDB_PG_BINDIR, Debian's layout, pg_config, PATH.
  for d in ${P2PDB_PG_BINDIR:-} /usr/lib/postgresql/*/bin $(pg_config --bindir 2>/dev/null || true) $PATH; do
    [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && return 0
  done
  return 1
}
# Stops every running Debian cluster (pg_lsclusters / pg_ctlcluster), marks it 'manual' in its
# start.conf so neither boot nor the service starts it, and disables the service under systemd.
stop_system_postgres() {
  local ver name port status conf
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name port status _; do
      [ -n "$name" ] || continue
      case "$status" in
        online*) say "stopping the system PostgreSQL cluster $ver/$name (port $port): p2pdb starts its own servers"
                 pg_ctlcluster "$ver" "$name" stop >&2 || say "could not stop PostgreSQL cluster $ver/$name" ;;
      esac
      conf="/etc/postgresql/$ver/$name/start.conf"
      if [ -f "$conf" ] && grep -qx 'auto' "$conf"; then
        sed -i 's/^auto$/manual/' "$conf" || true
      fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
  fi
  # Only where systemd really runs (not in most containers); never fatal.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    systemctl disable --now postgresql >/dev/null 2>&1 || true
  fi
}
if [ "$for_tests" = 1 ] && ! have_postgres_server; then
  if [ "${P2PDB_SKIP_POSTGRES_INSTALL:-}" = 1 ]; then
    say "PostgreSQL's server is not installed (P2PDB_SKIP_POSTGRES_INSTALL=1: not installing it; the PostgreSQL tests will say so)"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing postgresql (apt-get), for the PostgreSQL backend's tests"
    if apt_install postgresql; then
      stop_system_postgres
    else
      say "could not install postgresql; the PostgreSQL tests cannot run"
    fi
  else
    say "PostgreSQL's server is not installed: run 'sudo apt-get install -y postgresql' (then 'sudo systemctl disable --now postgresql': the tests start their own servers) to run the PostgreSQL tests"
  fi
fi
