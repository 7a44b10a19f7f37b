#!/bin/sh
# The library as a user gets it (docs/api.md): `cmake --install BUILD --prefix P` into two
# temporary prefixes (each elag.pc must name its own), then examples/infer.c built (C11)
# against one of them with `pkg-config --cflags --libs elag` (CPU-only: no CUDA library may
# be needed), with elag-cuda when the build has the CUDA backend, and as a CMake project
# that does find_package(elag); each runs on an export the just-built CLI makes and must
# print (samples x classes) finite logits and exit 0, and exit 2 with one line on a bad file.
# The export is a small pruned CNN (conv + batch norm, folded at export, as CSR) trained on
# 512 Fashion-MNIST images (Debian's dataset-fashion-mnist, which scripts/test installs).
#
# usage: test_install.sh BUILD_DIR SOURCE_DIR ELAG_CLI        (CTest: install_example)
# Exit 0 pass, 1 fail, 77 skip (no pkg-config or C compiler). $CC (default cc) and $CMAKE
# (default cmake) choose the tools.
set -eu

# ---- what the example runs on ------------------------------------------------------------
# TRAIN_CMD and EXPORT_CMD run (eval) with $ELAG (the CLI), $WORK (a scratch folder holding
# TRAIN_CONFIG as $WORK/train.yaml) and $EXPORT (where the export must end up).
TRAIN_CONFIG='name: tiny-cnn
device: cpu
data: {dataset: fashion-mnist, train_limit: 512, test_limit: 64}
model:
  layers:
    - {type: conv2d, out_channels: 4, kernel: 3, padding: 1, bias: false}
    - {type: batchnorm}
    - {type: relu}
    - {type: maxpool, kernel: 2}
    - {type: conv2d, out_channels: 8, kernel: 3, stride: 2}
    - {type: relu}
    - {type: flatten}
    - {type: linear, out_features: 10}
train: {epochs: 1, batch_size: 64, threads: 1}
prune: {method: gmp, target: 0.8, start: 0.0, end: 0.5, frequency: 2}'
# shellcheck disable=SC2016 # expanded when run (eval), not here
TRAIN_CMD='"$ELAG" train "$WORK/train.yaml" --out "$WORK/run" --quiet'
# shellcheck disable=SC2016
EXPORT_CMD='"$ELAG" export "$WORK/run/model.safetensors" --format csr -o "$EXPORT"'
# -------------------------------------------------------------------------------------------

skip() {
    echo "install_example: SKIPPED ($*)"
    exit 77
}
fail() {
    echo "install_example: FAILED: $*" >&2
    exit 1
}

[ $# -eq 3 ] || {
    echo "usage: $0 BUILD_DIR SOURCE_DIR ELAG_CLI" >&2
    exit 2
}
BUILD=$1
SRC=$2
ELAG=$3
CC=${CC:-cc}
CMAKE=${CMAKE:-cmake}
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config not found"
command -v "$CC" >/dev/null 2>&1 || skip "no C compiler ('$CC' not found)"
command -v "$CMAKE" >/dev/null 2>&1 || skip "cmake not found"
[ -x "$ELAG" ] || fail "no CLI at $ELAG (build first)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/elag-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' INT TERM
EXPORT=$WORK/model.export.safetensors

# Prints a log file and fails.
fail_log() {
    echo "---- $2" >&2
    cat "$2" >&2
    fail "$1"
}

# check_logits NAME OUT: OUT has a "# N samples x C classes, ..." line, then N lines of C
# finite numbers each.
check_logits() {
    head=$(grep '^#' "$2" | head -n 1)
    n=$(printf '%s\n' "$head" | sed -n 's/^# \([0-9][0-9]*\) samples x \([0-9][0-9]*\) classes.*/\1/p')
    c=$(printf '%s\n' "$head" | sed -n 's/^# \([0-9][0-9]*\) samples x \([0-9][0-9]*\) classes.*/\2/p')
    if [ -z "$n" ] || [ -z "$c" ] || [ "$n" -lt 1 ] || [ "$c" -lt 1 ]; then
        fail_log "$1: no '# N samples x C classes' line" "$2"
    fi
    grep -v '^#' "$2" | awk -v n="$n" -v c="$c" '
        { rows++
          if (NF != c) { printf "line %d: %d numbers, expected %d\n", rows, NF, c; bad = 1 }
          for (i = 1; i <= NF; i++)
              if ($i !~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/) {
                  printf "line %d: \"%s\" is not a finite number\n", rows, $i; bad = 1 } }
        END { if (rows != n) { printf "%d rows, expected %d\n", rows, n; bad = 1 }
              exit bad }' >&2 || fail_log "$1: the logits are not $n x $c finite numbers" "$2"
    echo "ok: $1: $n x $c logits ($(printf '%s\n' "$head" | sed 's/^# //'))"
}

# run_example NAME BINARY: runs it on the export and on a file that is not one.
run_example() {
    rc=0
    "$2" "$EXPORT" >"$WORK/$1.out" 2>"$WORK/$1.err" || rc=$?
    [ "$rc" -eq 0 ] || fail_log "$1: exit $rc on $EXPORT" "$WORK/$1.err"
    check_logits "$1" "$WORK/$1.out"
    rc=0
    "$2" "$WORK/train.yaml" >"$WORK/$1.bad.out" 2>"$WORK/$1.bad.err" || rc=$?
    [ "$rc" -eq 2 ] || fail_log "$1: exit $rc (expected 2) on a file that is not an export" \
        "$WORK/$1.bad.err"
    [ "$(wc -l <"$WORK/$1.bad.err")" -eq 1 ] ||
        fail_log "$1: expected one line on stderr for a bad file" "$WORK/$1.bad.err"
}

# needs BINARY REGEX: 1 when readelf lists a NEEDED library matching REGEX.
needs() {
    readelf -d "$1" | grep NEEDED | grep -Eq "$2"
}

# ---- 1. install into two prefixes; the .pc files name the prefix they are in ----
for p in first second; do
    "$CMAKE" --install "$BUILD" --prefix "$WORK/$p" >"$WORK/install-$p.log" 2>&1 ||
        fail_log "cmake --install $BUILD --prefix $WORK/$p" "$WORK/install-$p.log"
done
for p in first second; do
    find "$WORK/$p" -name '*.pc' >"$WORK/pc-$p.list"
    [ -s "$WORK/pc-$p.list" ] || fail "no .pc file under $WORK/$p"
    while read -r f; do
        [ "$(sed -n 's/^prefix=//p' "$f")" = "$WORK/$p" ] ||
            fail_log "$f does not name the prefix it was installed into ($WORK/$p)" "$f"
    done <"$WORK/pc-$p.list"
done
PREFIX=$WORK/second
pc=$(find "$PREFIX" -name elag.pc | head -n 1)
[ -n "$pc" ] || fail "no elag.pc under $PREFIX"
rm -rf "$WORK/first" # nothing installed in second may point at it
[ -f "$PREFIX/include/elag/elag.h" ] || fail "no $PREFIX/include/elag/elag.h"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
echo "ok: installed into two prefixes; using $PREFIX"

# ---- 2. an export made by the just-built CLI ----
printf '%s\n' "$TRAIN_CONFIG" >"$WORK/train.yaml"
eval "$TRAIN_CMD" >"$WORK/train.log" 2>&1 || fail_log "training: $TRAIN_CMD" "$WORK/train.log"
eval "$EXPORT_CMD" >"$WORK/export.log" 2>&1 || fail_log "export: $EXPORT_CMD" "$WORK/export.log"
[ -s "$EXPORT" ] || fail "the export command left no $EXPORT"

# ---- 3. examples/infer.c through pkg-config, CPU-only ----
# what elag.pc asks for, with every Requires expanded, names no CUDA library (issue 13)
pc_libs=$(pkg-config --libs --static elag) || fail "pkg-config --libs --static elag failed"
case "$pc_libs" in
*cuda* | *cublas* | *cusparse*) fail "pkg-config --libs elag names a CUDA library: $pc_libs" ;;
esac
echo "ok: pkg-config --libs --static elag: $pc_libs"
# shellcheck disable=SC2046 # pkg-config output is meant to be split into flags
"$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$WORK/infer_cpu" "$SRC/examples/infer.c" \
    $(pkg-config --cflags --libs elag) >"$WORK/cc-cpu.log" 2>&1 ||
    fail_log "$CC -std=c11 examples/infer.c \$(pkg-config --cflags --libs elag)" "$WORK/cc-cpu.log"
if command -v readelf >/dev/null 2>&1; then
    ! needs "$WORK/infer_cpu" 'libcuda|libcublas|libcusparse' ||
        fail "the CPU-only example needs a CUDA library: $(readelf -d "$WORK/infer_cpu" | grep NEEDED)"
fi
run_example pkg-config-cpu "$WORK/infer_cpu"

# ---- 4. the same with the CUDA backend, when this build has it ----
if pkg-config --exists elag-cuda; then
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$WORK/infer_cuda" \
        "$SRC/examples/infer.c" $(pkg-config --cflags --libs elag-cuda) >"$WORK/cc-cuda.log" 2>&1 ||
        fail_log "$CC -std=c11 examples/infer.c \$(pkg-config --cflags --libs elag-cuda)" \
            "$WORK/cc-cuda.log"
    nm "$WORK/infer_cuda" | grep -q ' elag_cuda_backend_provider$' ||
        fail "linked with elag-cuda, the example has no CUDA backend (elag_cuda_backend_provider)"
    run_example pkg-config-cuda "$WORK/infer_cuda"
else
    echo "note: elag-cuda.pc not installed (this build has no CUDA backend): CUDA link not tried"
fi

# ---- 5. a CMake project that does find_package(elag) ----
mkdir -p "$WORK/consumer"
cp "$SRC/examples/infer.c" "$WORK/consumer/"
cat >"$WORK/consumer/CMakeLists.txt" <<'CMAKE_EOF'
cmake_minimum_required(VERSION 3.24)
project(elag_consumer C)
find_package(elag 0.1 REQUIRED COMPONENTS ${ELAG_COMPONENTS})
add_executable(infer infer.c)
set_target_properties(infer PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
target_link_libraries(infer PRIVATE ${ELAG_TARGET})
CMAKE_EOF
cmake_example() { # NAME TARGET COMPONENTS
    "$CMAKE" -S "$WORK/consumer" -B "$WORK/consumer/$1" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_C_COMPILER="$CC" -DELAG_TARGET="$2" -DELAG_COMPONENTS="$3" \
        >"$WORK/$1.configure.log" 2>&1 || fail_log "$1: find_package(elag) project" "$WORK/$1.configure.log"
    "$CMAKE" --build "$WORK/consumer/$1" >"$WORK/$1.build.log" 2>&1 ||
        fail_log "$1: building the find_package(elag) project" "$WORK/$1.build.log"
    run_example "$1" "$WORK/consumer/$1/infer"
}
cmake_example cmake-cpu elag::elag ""
if [ -f "$(dirname "$PKG_CONFIG_PATH")/cmake/elag/elagCudaTargets.cmake" ]; then
    cmake_example cmake-cuda elag::elag_cuda cuda
fi
echo "install_example: PASSED"
