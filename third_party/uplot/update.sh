#!/bin/sh
# Re-vendors uPlot (https://github.com/leeoniya/uPlot, MIT) from the npm
# registry: the live page and `herd report` embed these two files into the
# binary, so pages work offline (no CDN). Usage: update.sh [VERSION]
set -eu
version=${1:-$(cat "$(dirname "$0")/VERSION")}
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null && tar xzf uplot-*.tgz)
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" \
   "$tmp/package/LICENSE" "$dir/"
echo "$version" > "$dir/VERSION"
(cd "$dir" && sha256sum uPlot.iife.min.js uPlot.min.css LICENSE > SHA256SUMS)
echo "uPlot $version vendored into $dir"
