#!/usr/bin/env bash
# Installs the package as a user would, twice: the packed tarball into an application already on
# ioredis 5, then `npm install <folder>` into one on ioredis 6, each with the engines and Express. Runs
# there, from another working directory that holds other copies (older versions) of every engine,
# Express and ioredis: an ES module script and a CommonJS one (a cache, a template of each engine with
# a cache tag, a cached Express route, the application's ioredis loaded, the OpenTelemetry bridge with
# no SDK), and one with a cached page on Fastify, Koa and Hono and a cached fragment in EJS, Pug and Liquid. Compiles a consumer module
# with tsc --strict under node16, nodenext and bundler resolution, on the newest TypeScript and on the
# project's own, with no `types` setting and without skipLibCheck (the types of every peer are
# installed), and a module of the other entry points alone, whose program loads no server client's
# types (those bring Node's); a misspelt option must fail to compile. Then compiles a module of the cache
# and the page cache in an application that installed none of the optional peers. Problems with the tarball's contents are
# reported at the end, after every other check has run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
project_typescript="$(node -p "require('$root/node_modules/typescript/package.json').version")"
install=(npm install --no-audit --no-fund --prefer-offline --loglevel=error)
problems=()

tarball="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)"
listing="$(tar -tzf "$work/$tarball")"
unexpected="$(grep -E '^package/dist/(examples|bench|test)/' <<<"$listing" || true)"
if [ -n "$unexpected" ]; then echo "the tarball ships files that are not the library:"; echo "$unexpected"; exit 1; fi
grep -qx 'package/LICENSE' <<<"$listing" || problems+=("the tarball holds no LICENSE")
mkdir "$work/unpacked"
tar -xzf "$work/$tarball" -C "$work/unpacked"
# The specification is not shipped, so the shipped files must not send a reader to it.
unshipped="$(cd "$work/unpacked/package" && grep -rn 'SPEC' dist || true)"
if [ -n "$unshipped" ]; then
  problems+=("the tarball names $(wc -l <<<"$unshipped") times a document it does not ship; the first: $(head -n 3 <<<"$unshipped")")
fi

# The working directory the applications are run from: other copies of what they use.
elsewhere="$work/elsewhere"
mkdir -p "$elsewhere"
(cd "$elsewhere" && npm init -y >/dev/null && "${install[@]}" nunjucks@3.2.0 handlebars@4.5.3 eta@3 express@4 ioredis@6 >/dev/null)

check() {
  local how="$1" source="$2" ioredis="$3" app="$work/app-$1"
  mkdir -p "$app"
  cp -r "$root/test/package/app/." "$app/"
  (
    cd "$app"
    npm init -y >/dev/null
    "${install[@]}" "ioredis@$ioredis" >/dev/null
    "${install[@]}" "$source" nunjucks handlebars eta express fastify koa hono @hono/node-server ejs pug liquidjs @opentelemetry/api \
      typescript@latest "typescript-project@npm:typescript@$project_typescript" @types/node @types/nunjucks @types/pg @types/better-sqlite3 >/dev/null
  )
  (
    cd "$elsewhere"
    node "$app/esm.mjs"
    node "$app/cjs.cjs"
    node "$app/reach.mjs"
  )
  (
    cd "$app"
    for typescript in typescript typescript-project; do
      local version
      version="$(node -p "require('./node_modules/$typescript/package.json').version")"
      for resolution in node16 nodenext bundler; do
        local module="$resolution"
        [ "$resolution" = bundler ] && module=esnext
        local tsc=(node "node_modules/$typescript/bin/tsc" --strict --noEmit --module "$module" --moduleResolution "$resolution" --target es2022)
        "${tsc[@]}" consumer.mts
        if "${tsc[@]}" typo.mts >"$app/typo.out" 2>&1; then
          echo "$how, TypeScript $version, $resolution: typo.mts compiled, but a misspelt option must be a type error"
          exit 1
        fi
        grep -q "maxEntires" "$app/typo.out" || {
          cat "$app/typo.out"
          exit 1
        }
        echo "$how, ioredis $ioredis, TypeScript $version, $resolution: types ok"
      done
      node "node_modules/$typescript/bin/tsc" --strict --noEmit --module nodenext --target es2022 entries.mts
      echo "$how, TypeScript $version: the entries without a server client's types ok"
    done
  )
}

# An application on the cache and the page cache alone, with none of the optional peers installed
# but Node's types: the package's types must need no server client and no engine.
bare() {
  local app="$work/app-bare"
  mkdir -p "$app"
  cp "$root/test/package/app/bare.mts" "$app/"
  (
    cd "$app"
    npm init -y >/dev/null
    "${install[@]}" "$work/$tarball" typescript@latest @types/node >/dev/null
    if [ -d node_modules/ioredis ] || [ -d node_modules/pg ]; then
      echo "bare: an optional peer was installed with the package"
      exit 1
    fi
    node node_modules/typescript/bin/tsc --strict --noEmit --module nodenext --target es2022 bare.mts
    echo "bare: the types compile with no server client and no engine installed"
  )
}

# The three applications share nothing but npm's cache: they are installed and checked side by side.
checks=()
check tarball "$work/$tarball" 5 &
checks+=($!)
check folder "$root" 6 &
checks+=($!)
bare &
checks+=($!)
failed=0
for job in "${checks[@]}"; do wait "$job" || failed=1; done
[ "$failed" -eq 0 ] || exit 1
if [ "${#problems[@]}" -gt 0 ]; then
  printf 'package: %s\n' "${problems[@]}"
  exit 1
fi
echo "package: ok"
