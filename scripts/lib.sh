# shellcheck shell=bash
# Helpers sourced by scripts/test and scripts/demo: go to the repo root, make the
# virtualenv (.venv, with `-e .[dev]`), and make sure OpenSSH (SSH tests) and Chromium (HTML
# report screenshot test) are there.
# Callers run with `set -euo pipefail`.

# cd to the repository root, whatever the caller's working directory.
repo_root() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || return
}

is_root_with_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null
}

# apt-get install PACKAGES without starting any service their postinst would start.
apt_install() {
    local policy=/usr/sbin/policy-rc.d made_policy='' rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    echo "apt-get install $*"
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    } || rc=$?
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
    return "$rc"
}

# Run pip quietly: its output (build warnings included) is shown only when it fails.
pip_quiet() {
    local log rc=0
    log=$(mktemp)
    PIP_NO_INPUT=1 .venv/bin/python -m pip --disable-pip-version-check "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then cat "$log" >&2; fi
    rm -f "$log"
    return "$rc"
}

# Print the first python >= 3.11 that can make a venv.
find_python() {
    local py
    for py in python3.11 python3.12 python3.13 python3; do
        if command -v "$py" >/dev/null &&
            "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
                2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

# Create .venv if missing (or broken) and install `-e .[dev]` once per pyproject.toml version.
ensure_venv() {
    local py stamp
    if ! .venv/bin/python -c '' 2>/dev/null; then
        if ! py=$(find_python); then
            if is_root_with_apt; then apt_install python3 python3-venv; fi
            py=$(find_python) || { echo "error: need python >= 3.11 with venv" >&2; return 1; }
        fi
        echo "creating .venv with $py ($("$py" --version 2>&1))"
        "$py" -m venv --clear .venv
        pip_quiet install --upgrade pip
    fi
    stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -e "$stamp" ]; then
        echo "installing -e .[dev] into .venv"
        pip_quiet install -e '.[dev]'
        rm -f .venv/.installed-*
        touch "$stamp"
    fi
}

find_sshd() {
    if [ -x /usr/sbin/sshd ]; then echo /usr/sbin/sshd; else command -v sshd; fi
}

# Make sure sshd, ssh and ssh-keygen exist (installing them as root) and export TEARDOWN_SSHD.
ensure_openssh() {
    local sshd
    if ! { sshd=$(find_sshd) && command -v ssh && command -v ssh-keygen; } >/dev/null; then
        if is_root_with_apt; then
            apt_install openssh-server openssh-client
            # Installed for the tests only: the system sshd service stays off.
            if command -v systemctl >/dev/null; then
                systemctl disable --quiet ssh.service 2>/dev/null || true
            fi
        else
            echo "note: OpenSSH server not installed and not root: SSH tests will be skipped" \
                "(install openssh-server to run them)"
        fi
    fi
    if sshd=$(find_sshd); then export TEARDOWN_SSHD="$sshd"; fi
}

# Make sure headless Chromium is there for the HTML report screenshot test: as root with apt,
# install it quietly (its output is shown only when it fails), running `apt-get update` only when
# there are no package lists or the install fails with the ones there.
ensure_chromium() {
    local log rc=0
    if command -v chromium >/dev/null; then return 0; fi
    if ! is_root_with_apt; then
        echo "note: chromium not installed and not root: the HTML screenshot test will be skipped" \
            "(install chromium to run it)"
        return 0
    fi
    echo "apt-get install chromium"
    log=$(mktemp)
    {
        if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ||
            {
                DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                        --no-install-recommends chromium
            }
    } >"$log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then cat "$log" >&2; fi
    rm -f "$log"
    return "$rc"
}
