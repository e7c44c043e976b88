#!/usr/bin/env bash
# The test suite starts real Redis, memcached and PostgreSQL servers on loopback, a Varnish and an
# nginx in front of the page cache, and drives the dashboard in Debian's chromium. This makes sure they are installed: it installs the Debian packages when it can (root with apt-get), and
# otherwise fails with the exact command to run.
set -euo pipefail

packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || packages+=(memcached)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 || packages+=(postgresql)
command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || packages+=(varnish)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
# xkey purges (Varnish) and PURGE by URL (nginx), for the purge tests.
compgen -G '/usr/lib/*/varnish/vmods/libvmod_xkey.so' >/dev/null || packages+=(varnish-modules)
[ -f /usr/lib/nginx/modules/ngx_http_cache_purge_module.so ] || packages+=(libnginx-mod-http-cache-purge)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || packages+=(chromium)

[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing what the tests need: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  # The packages' own services are not wanted: the tests start their own servers on free ports.
  for service in redis-server memcached postgresql varnish nginx; do
    command -v service >/dev/null 2>&1 && service "$service" stop >/dev/null 2>&1 || true
  done
  exit 0
fi

echo "The tests need these Debian packages installed: ${packages[*]}" >&2
echo "Install them with: sudo apt-get install -y ${packages[*]}" >&2
exit 1
