#!/bin/sh
# Builds classify.wasm from classify.c, deterministically: the same toolchain
# gives the same bytes on every build, in any directory.
#
#   ./build.sh          build classify.wasm (and record the toolchain in toolchain.txt)
#   ./build.sh --check  rebuild into a temp file; exit 1 if it differs from the
#                       committed classify.wasm. Exits 0 (skipped) when clang with
#                       the wasm32-wasi target is not installed, or when the
#                       toolchain differs from the one in toolchain.txt (another
#                       compiler or libc gives other, equally valid, bytes).
#
# Toolchain (Debian 12): apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 libstb-dev
set -eu

cd "$(dirname "$0")"
CLANG=${CLANG:-clang}

# Fixed flags; CFLAGS/LDFLAGS from the environment are deliberately ignored.
# - the source is passed by its relative name and file prefixes are mapped, so
#   __FILE__ (used by stb's asserts) never holds the build directory;
# - no debug info, and --strip-all drops the name and producers sections;
# - wasm-ld writes no timestamps; --stack-first makes a stack overflow trap
#   instead of silently overwriting data;
# - 4 MiB of initial memory: what the sample photo (512x600) needs, about 3 MB, so
#   that it does not grow while decoding (faasbox keeps a slot's first 4 MiB
#   resident between instances: faasbox/execution/wasm/engine.py); a larger photo
#   grows the memory as before.
build() {
    LC_ALL=C "$CLANG" --target=wasm32-wasi -std=c11 -O2 -msimd128 \
        -Wall -Wextra -Wno-unused-function -Wno-sign-compare \
        -g0 -ffile-prefix-map="$PWD"=. -fno-ident \
        -Wl,--strip-all -Wl,--stack-first -Wl,-z,stack-size=262144 \
        -Wl,--initial-memory=4194304 \
        classify.c -o "$1"
}

toolchain() {
    "$CLANG" --version | head -n 1
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Package} ${Version}\n' wasi-libc libstb-dev 2>/dev/null || true
    fi
}

have_wasi_clang() {
    command -v "$CLANG" >/dev/null 2>&1 || return 1
    probe=$(mktemp -d)
    printf '#include <stb/stb_image.h>\nint main(void){return 0;}\n' >"$probe/p.c"
    ok=0
    "$CLANG" --target=wasm32-wasi "$probe/p.c" -o "$probe/p.wasm" >/dev/null 2>&1 || ok=1
    rm -rf "$probe"
    return $ok
}

case "${1:-}" in
    --check)
        if ! have_wasi_clang; then
            echo "build.sh --check: skipped: clang with the wasm32-wasi target (and libstb-dev) is not installed"
            exit 0
        fi
        if [ -f toolchain.txt ] && [ "$(toolchain)" != "$(cat toolchain.txt)" ]; then
            echo "build.sh --check: skipped: toolchain differs from the one classify.wasm was built with"
            echo "  built with: $(tr '\n' ';' <toolchain.txt)"
            echo "  installed:  $(toolchain | tr '\n' ';')"
            exit 0
        fi
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        build "$tmp/classify.wasm"
        if cmp -s "$tmp/classify.wasm" classify.wasm; then
            echo "build.sh --check: ok: classify.wasm matches its source"
            exit 0
        fi
        echo "build.sh --check: FAILED: classify.wasm differs from a fresh build of classify.c; run ./build.sh and commit classify.wasm" >&2
        exit 1
        ;;
    "")
        build classify.wasm.tmp
        mv classify.wasm.tmp classify.wasm
        toolchain >toolchain.txt
        size=$(wc -c <classify.wasm | tr -d ' ')
        echo "built classify.wasm ($size bytes)"
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac
