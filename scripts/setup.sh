# Shared by scripts/quickstart and scripts/test (sourced, not run): installs what is
# missing through apt-get (apt-get update only when something is missing), then
# configures and builds elag in build/ (Release). Quick the second time.

ELAG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ELAG_BUILD=${ELAG_BUILD:-$ELAG_ROOT/build}
ELAG_PACKAGES="cmake gcc g++ make pkg-config libopenblas-dev libyaml-dev libcjson-dev zlib1g-dev
  libcriterion-dev dataset-fashion-mnist"

elag_install_missing() {
  local missing=() p
  for p in $ELAG_PACKAGES "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "elag: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

elag_build() {
  local werror=${ELAG_WERROR:-OFF}
  local args=(-S "$ELAG_ROOT" -B "$ELAG_BUILD" -DCMAKE_BUILD_TYPE=Release -DELAG_WERROR="$werror")
  # nvcc is on PATH or in /usr/local/cuda on our machines: the CUDA backend is always built.
  if [ -n "${CUDA_ARCHS:-}" ]; then args+=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"); fi
  cmake "${args[@]}" >/dev/null
  cmake --build "$ELAG_BUILD" -j"$(nproc)"
}
