#!/usr/bin/env bash
# Refresh the vendored browser libraries from the npm registry (versions pinned in package.json and
# package-lock.json). The dashboard serves these files itself: a hall LAN has no internet.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
out=../src/hallq/dashboard/static/vendor
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$out/htmx.LICENSE"
cp node_modules/htmx-ext-sse/dist/sse.min.js "$out/htmx-ext-sse.min.js"
cp node_modules/htmx-ext-sse/LICENSE "$out/htmx-ext-sse.LICENSE"
(cd "$out" && sha256sum htmx.min.js htmx-ext-sse.min.js > SHA256SUMS)
