# Shared by scripts/serve and scripts/test: install Debian packages and the Python venv.
# shellcheck shell=bash

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_need PKG...: install the Debian packages that are missing (one apt-get run).
apt_need() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv EXTRAS: create .venv with python3 >= 3.11 and install the project into it.
ensure_venv() {
  local extras="$1"
  local py=${PYTHON:-python3}
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "nvr needs Python >= 3.11 ($py is $("$py" --version 2>&1))" >&2
    exit 2
  fi
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv 2>/dev/null || { apt_need python3-venv && "$py" -m venv .venv; }
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import nvr" || { echo "installing nvr into .venv failed" >&2; exit 2; }
}
