# Sourced by scripts/*: the Python environments, one per Home Assistant flavour.
#   min             Home Assistant 2025.4.4 (the declared minimum), Python 3.13.0, tests + demo: .venv
#   latest          the newest Home Assistant a pytest-homeassistant-custom-component release pins,
#                   Python 3.14: tests
#   develop-latest  the newest Home Assistant release on PyPI, Python 3.14: the demo
# Python 3.14 comes from PATH when the machine has it, otherwise from a Debian testing root
# (scripts/lib/forky-root). Environments are reused while their requirement files are unchanged;
# everything but .venv lives in the cache, outside the checkout.

IOT_SMS_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IOT_SMS_CACHE="${IOT_SMS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iot_sms}"
export IOT_SMS_CACHE

env_requirements() {
  case "$1" in
    min) echo "requirements.txt requirements_test.txt requirements_dev.txt" ;;
    latest) echo "requirements_test_latest.txt" ;;
    develop-latest) echo "requirements_develop_latest.txt" ;;
    *) echo "unknown Home Assistant flavour '$1' (min, latest, develop-latest)" >&2; return 2 ;;
  esac
}

env_python_version() {
  case "$1" in
    min) tr -d '[:space:]' < "$IOT_SMS_REPO/.python-version" ;;
    *) echo 3.14 ;;
  esac
}

# True when the flavour runs inside the Debian root (no host python3.14).
env_in_root() {
  [ "$1" != min ] && ! command -v python3.14 >/dev/null 2>&1
}

env_venv() {
  if [ "$1" = min ]; then
    echo "$IOT_SMS_REPO/.venv"
  elif env_in_root "$1"; then
    echo "/opt/iot_sms/venv-$1"
  else
    echo "$IOT_SMS_CACHE/venv-$1"
  fi
}

# env_run FLAVOUR CMD...: run CMD with the flavour's venv first on PATH, in the current directory.
env_run() {
  local flavour="$1"; shift
  local venv; venv="$(env_venv "$flavour")"
  if env_in_root "$flavour"; then
    "$IOT_SMS_REPO/scripts/lib/forky-root" run /usr/bin/env \
      PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" VIRTUAL_ENV="$venv" "$@"
  else
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" "$@"
  fi
}

# env_exec FLAVOUR CMD...: like env_run, but replaces the shell, so that a background job's pid
# is the command's own (a signal to it reaches the command, inside the root too).
env_exec() {
  local flavour="$1"; shift
  local venv; venv="$(env_venv "$flavour")"
  if env_in_root "$flavour"; then
    exec "$IOT_SMS_REPO/scripts/lib/forky-root" run /usr/bin/env \
      PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" VIRTUAL_ENV="$venv" "$@"
  else
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" exec "$@"
  fi
}

# env_setup FLAVOUR: create or update the flavour's venv unless its requirements are unchanged.
env_setup() {
  local flavour="$1"
  local reqs; reqs="$(env_requirements "$flavour")" || return
  local want; want="$(env_python_version "$flavour")"
  local digest
  digest="$(cd "$IOT_SMS_REPO" && { echo "$want"; cat $reqs; } | sha256sum | cut -d' ' -f1)"
  if env_in_root "$flavour"; then
    "$IOT_SMS_REPO/scripts/lib/forky-root" ensure
    # The demo's Home Assistant probes ffmpeg and libturbojpeg at start and logs errors without.
    [ "$flavour" = develop-latest ] && "$IOT_SMS_REPO/scripts/lib/forky-root" install ffmpeg libturbojpeg0
  fi
  if [ "$(env_run "$flavour" /bin/sh -c 'cat "$VIRTUAL_ENV/.requirements.sha256" 2>/dev/null' || true)" = "$digest" ]; then
    return 0
  fi
  local python
  if [ "$flavour" = min ]; then
    python="$(_env_find_python "$want")" || return
  elif env_in_root "$flavour"; then
    python=/usr/bin/python3.14
  else
    python="$(command -v python3.14)"
  fi
  local args=()
  for f in $reqs; do args+=(-r "$f"); done
  echo "Installing the '$flavour' environment ($(env_venv "$flavour")); the first time takes about 5 minutes..." >&2
  (cd "$IOT_SMS_REPO" && env_run "$flavour" /bin/sh -c '
    set -e
    python="$1" want="$2" digest="$3"; shift 3
    if [ ! -x "$VIRTUAL_ENV/bin/python" ] \
      || [ "$("$VIRTUAL_ENV/bin/python" -c "import platform; print(platform.python_version())" | cut -c1-${#want})" != "$want" ]; then
      rm -rf "$VIRTUAL_ENV"
      "$python" -m venv "$VIRTUAL_ENV"
    fi
    "$VIRTUAL_ENV/bin/python" -m pip install --quiet --upgrade pip
    "$VIRTUAL_ENV/bin/python" -m pip install --quiet "$@"
    echo "$digest" > "$VIRTUAL_ENV/.requirements.sha256"
  ' env-setup "$python" "$want" "$digest" "${args[@]}")
}

_env_find_python() {
  local want="$1" root candidate
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
    if [ -x "$root/versions/$want/bin/python" ]; then
      echo "$root/versions/$want/bin/python"; return
    fi
  fi
  for candidate in "python$want" "python${want%.*}" python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && [ "$("$candidate" -c 'import platform; print(platform.python_version())')" = "$want" ]; then
      command -v "$candidate"; return
    fi
  done
  echo "Python $want not found (install it with: pyenv install $want)" >&2
  return 1
}

# env_mypy_flags FLAVOUR: what mypy needs to check against that flavour's Home Assistant; the
# names are the switches of custom_components/iot_sms/compat.py.
env_mypy_flags() {
  case "$1" in
    min) echo "--always-false SINGLE_ENTRY_DEVICES --always-false PROBATIO" ;;
    *) echo "--python-version 3.14 --always-true SINGLE_ENTRY_DEVICES --always-true PROBATIO" ;;
  esac
}

# parse_ha_flag "$@": sets HA_FLAVOURS from --ha min|latest|both and REST_ARGS to the rest.
parse_ha_flag() {
  local default="$1"; shift
  HA_FLAVOURS="$default"
  REST_ARGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --ha) HA_FLAVOURS="${2:?--ha needs min, latest or both}"; shift 2 ;;
      --ha=*) HA_FLAVOURS="${1#--ha=}"; shift ;;
      *) REST_ARGS+=("$1"); shift ;;
    esac
  done
  [ "$HA_FLAVOURS" = both ] && HA_FLAVOURS="min latest"
  return 0
}
