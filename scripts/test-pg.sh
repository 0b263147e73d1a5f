#!/usr/bin/env bash
# The core tests against PostgreSQL: starts a throwaway cluster (Debian's `postgresql`, initdb in a temp dir,
# loopback, a free port), runs mocha on the engine-agnostic subset with PHIGW_TEST_DATABASE_URL set (a fresh
# database per data directory, test/support/test-database.ts), then stops and removes the cluster.
# Never touches an existing cluster. Expects a build (`npx tsc -p .`, which `npm test` runs first).
# With PHIGW_TEST_DATABASE_URL already set, uses that server instead (it must allow CREATE DATABASE).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

files=(
  dist/test/store/audit.test.js
  dist/test/store/pgp-keyring.test.js
  dist/test/store/pickups.test.js
  dist/test/store/rewrap.test.js
  dist/test/store/sealed-file.test.js
  dist/test/store/settings.test.js
  dist/test/store/store.test.js
  dist/test/store/users.test.js
  dist/test/store/user-keys.test.js
  dist/test/gateway/claims.test.js
  dist/test/gateway/relay.integration.test.js
  dist/test/gateway/spool.integration.test.js
  dist/test/gateway/crash.integration.test.js
  dist/test/gateway/protect.integration.test.js
  dist/test/gateway/protect-policy.integration.test.js
  dist/test/web/staff-auth.test.js
  dist/test/web/pickup-portal.integration.test.js
  dist/test/web/admin-settings.integration.test.js
  dist/test/deploy/two-nodes.integration.test.js
)
# Not here: test/store/backup.test.ts (`phi-gateway backup` copies the SQLite file; on PostgreSQL back up with
# pg_dump plus the data directory, docs/deploy.md).

if [ -z "${PHIGW_TEST_DATABASE_URL:-}" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ]; then
    echo "test-pg: PostgreSQL server not installed (apt-get install postgresql)" >&2
    exit 1
  fi
  tmp=$(mktemp -d /tmp/phigw-test-pg.XXXXXX)
  # initdb refuses root: as root the cluster belongs to the postgres user.
  as_owner=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$tmp"
    as_owner=(runuser -u postgres --)
  fi
  port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  stop_cluster() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
  }
  trap stop_cluster EXIT
  "${as_owner[@]}" "$bin/initdb" -D "$tmp/data" -A trust -U postgres --no-sync >/dev/null
  # fsync off: a throwaway cluster for tests only (nothing here must survive a power cut).
  "${as_owner[@]}" "$bin/pg_ctl" -D "$tmp/data" -w -l "$tmp/server.log" \
    -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  export PHIGW_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "test-pg: throwaway PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
fi

npx mocha --require dist/test/support/test-database.js "${files[@]}"
