#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the multi-worker storage test; prints the URL to use.
# Debian/Ubuntu as root: installs the `postgresql` package if missing and starts its cluster.
# Anything else: says why on stderr and prints nothing (the test then skips, saying so).
set -u
say() { echo "postgres.sh: $*" >&2; }
if [ "$(id -u)" != 0 ]; then say "not root: not starting PostgreSQL"; exit 0; fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  command -v apt-get >/dev/null || { say "no apt-get: install PostgreSQL yourself"; exit 0; }
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 \
    || { say "apt-get install postgresql failed"; exit 0; }
fi
ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
[ -n "$ver" ] || { say "no PostgreSQL cluster found"; exit 0; }
pg_ctlcluster "$ver" main start >/dev/null 2>&1 || pg_ctlcluster "$ver" main status >/dev/null 2>&1 \
  || { say "cluster $ver/main would not start"; exit 0; }
for _ in $(seq 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='wbtest'\"" | grep -q 1 \
  || su postgres -c "psql -q -c \"CREATE ROLE wbtest LOGIN SUPERUSER PASSWORD 'wbtest'\"" >/dev/null
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='wbtest'\"" | grep -q 1 \
  || su postgres -c "createdb -O wbtest wbtest"
echo "postgresql://wbtest:wbtest@127.0.0.1:5432/wbtest"
