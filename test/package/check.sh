#!/usr/bin/env bash
# Installs the package as a user would, twice (the packed tarball, then `npm install <folder>`), into a
# fresh project with the engines and Express, and runs there: an ES module script and a CommonJS one
# (a cache, a template of each engine with a cache tag, a cached Express route), and tsc --strict on a
# consumer module under node16 and bundler resolution, where a misspelt option must fail to compile.
# Declaration files are not checked (skipLibCheck, as `tsc --init` sets it): the types of an optional
# peer a user has not installed (ioredis for a locmem-only application) are not there to check.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
typescript="typescript@$(node -p "require('$root/node_modules/typescript/package.json').version")"
types_node="@types/node@$(node -p "require('$root/node_modules/@types/node/package.json').version")"

tarball="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)"
unexpected="$(tar -tzf "$work/$tarball" | grep -E '^package/dist/(examples|bench|test)/' || true)"
if [ -n "$unexpected" ]; then echo "the tarball ships files that are not the library:"; echo "$unexpected"; exit 1; fi

check() {
  local how="$1" source="$2" app="$work/app-$1"
  mkdir -p "$app"
  cp -r "$root/test/package/app/." "$app/"
  (
    cd "$app"
    npm init -y >/dev/null
    npm install --no-audit --no-fund --prefer-offline --loglevel=error "$source" nunjucks handlebars eta express "$typescript" "$types_node" >/dev/null
    node esm.mjs
    node cjs.cjs
    for resolution in node16 bundler; do
      module=$([ "$resolution" = node16 ] && echo node16 || echo esnext)
      npx tsc --strict --noEmit --skipLibCheck --types node --module "$module" --moduleResolution "$resolution" --target es2022 consumer.mts
      if npx tsc --strict --noEmit --skipLibCheck --types node --module "$module" --moduleResolution "$resolution" --target es2022 typo.mts >"$app/typo.out" 2>&1; then
        echo "$how, $resolution: typo.mts compiled, but a misspelt option must be a type error"; exit 1
      fi
      grep -q "maxEntires" "$app/typo.out" || { cat "$app/typo.out"; exit 1; }
      echo "$how, $resolution: types ok"
    done
  )
}

check tarball "$work/$tarball"
check folder "$root"
echo "package: ok"
