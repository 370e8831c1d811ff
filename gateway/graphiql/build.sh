#!/usr/bin/env bash
# Builds GraphiQL's static files for the gateway, with Node as a build tool only:
#   gateway/graphiql/build.sh [outdir]   (default: gateway/src/veche_gateway/static/graphiql)
# Idempotent: does nothing while the output is newer than package-lock.json and the
# sources. Without Node it warns and exits 0: the gateway still serves the JSON API,
# and GET /graphql from a browser explains how to build GraphiQL.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../src/veche_gateway/static/graphiql}"

if [ -f "$out/index.html" ] && [ -z "$(find "$here/package-lock.json" "$here/package.json" \
    "$here/build.mjs" "$here/build.sh" "$here/src" -newer "$out/index.html" -print -quit)" ]; then
  echo "graphiql: up to date ($out)"
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "graphiql: WARNING: node/npm not found, GraphiQL not built (install Node.js 20+ and rerun $0)" >&2
  exit 0
fi

cd "$here"
# npm ci keeps its own copy of the lock in node_modules: reinstall when ours is newer
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs "$out"
