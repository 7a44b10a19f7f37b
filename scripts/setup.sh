# shellcheck shell=bash
# Shared by scripts/quickstart and scripts/test (sourced, not run): installs what is
# missing through apt-get (apt-get update only when something is missing), then
# configures and builds elag in build/ (Release). Quick the second time.

ELAG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ELAG_BUILD=${ELAG_BUILD:-$ELAG_ROOT/build}
# What the build needs (and quickstart's data set): the install must succeed.
ELAG_PACKAGES="cmake gcc g++ make pkg-config libopenblas-dev libyaml-dev libcjson-dev zlib1g-dev
  libcriterion-dev dataset-fashion-mnist libprotobuf-c-dev protobuf-c-compiler"
# What commands and tests run with the system interpreter /usr/bin/python3 (Debian's python3-*
# packages belong to it; a python3 earlier on PATH, e.g. pyenv's, usually lacks them):
# python3-matplotlib (which brings python3-numpy) for `elag report`'s plots (scripts/plot.py)
# and scripts/plot_bench.py; python3-numpy for the numpy-only export reader test;
# python3-scipy, python3-yaml and python3-torch for the recipes of docs/python.md, which
# tests/test_python_recipes.c runs; python3-venv for the ONNX Runtime venv (elag_onnx_tools
# below). When they cannot be installed, the build goes on: the
# tests that need them skip visibly and `elag report` says in one line that it drew no
# plots, and why.
ELAG_PYTHON_PACKAGES="python3-numpy python3-matplotlib python3-scipy python3-yaml python3-torch
  python3-venv"

# Prints the packages of "$@" that are not installed, one a line.
elag_missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Installs the build packages, those given as arguments (they must install too) and the
# Python packages (best effort), whichever are missing.
elag_install_missing() {
  local required=() optional=() sudo=()
  # shellcheck disable=SC2086 # the package lists are split on purpose
  mapfile -t required < <(elag_missing_packages $ELAG_PACKAGES "$@")
  # shellcheck disable=SC2086
  mapfile -t optional < <(elag_missing_packages $ELAG_PYTHON_PACKAGES)
  local all=("${required[@]}" "${optional[@]}")
  [ ${#all[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    elif [ ${#required[@]} -gt 0 ]; then
      echo "elag: missing ${required[*]}; as root: apt-get install ${all[*]}" >&2
      return 1
    else
      elag_python_packages_missing "not root and no sudo" "${optional[@]}"
      return 0
    fi
  fi
  echo "elag: installing ${all[*]}" >&2
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  if ! "${apt[@]}" update -qq; then
    [ ${#required[@]} -gt 0 ] && return 1
    elag_python_packages_missing "apt-get update failed" "${optional[@]}"
    return 0
  fi
  "${apt[@]}" install -y -qq --no-install-recommends "${all[@]}" >&2 &&
    return 0
  [ ${#optional[@]} -eq 0 ] && return 1
  # Retry without the Python packages: the build does not need them.
  if [ ${#required[@]} -gt 0 ]; then
    "${apt[@]}" install -y -qq --no-install-recommends "${required[@]}" >&2 || return 1
  fi
  elag_python_packages_missing "apt-get install failed" "${optional[@]}"
}

elag_python_packages_missing() { # REASON PACKAGE...
  local why=$1
  shift
  echo "elag: could not install $* ($why): the tests that need them are skipped and" \
    "'elag report' draws no plots; install them with: apt-get install $*" >&2
}

# elag_build [CMAKE_ARG...]: configures and builds $ELAG_BUILD; the arguments are added to
# the configure line (scripts/test --sanitize, scripts/fuzz).
elag_build() {
  local werror=${ELAG_WERROR:-OFF}
  local args=(-S "$ELAG_ROOT" -B "$ELAG_BUILD" -DCMAKE_BUILD_TYPE=Release -DELAG_WERROR="$werror"
    "$@")
  # nvcc is on PATH or in /usr/local/cuda on our machines: the CUDA backend is always built.
  if [ -n "${CUDA_ARCHS:-}" ]; then args+=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"); fi
  cmake "${args[@]}" >/dev/null
  cmake --build "$ELAG_BUILD" -j"$(nproc)"
}

# What only the ONNX tests use (docs/onnx.md), best effort: Debian's python3-torch (the
# PyTorch round trip, tests/test_onnx_torch.c) and python3-venv, then onnxruntime and numpy
# from PyPI into $ELAG_BUILD/onnx-venv (tests/test_onnx_runtime.c finds it there). Any
# step that fails says so in one line and the tests that need it skip visibly.
ELAG_ONNX_PACKAGES="python3-torch python3-venv"
elag_onnx_tools() {
  local missing=() sudo=()
  # shellcheck disable=SC2086
  mapfile -t missing < <(elag_missing_packages $ELAG_ONNX_PACKAGES)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=(sudo); fi
    if [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; then
      echo "elag: installing ${missing[*]} (ONNX tests)" >&2
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >&2 ||
        echo "elag: could not install ${missing[*]}: the ONNX tests that need them skip" >&2
    else
      echo "elag: not root: ${missing[*]} not installed; the ONNX tests that need them skip" >&2
    fi
  fi
  local venv=$ELAG_BUILD/onnx-venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
    { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q onnxruntime numpy; } >&2 ||
      echo "elag: could not make $venv with onnxruntime (pip): the ONNX Runtime tests skip" >&2
  fi
  return 0
}
