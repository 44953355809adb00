#!/usr/bin/env bash
# Install Glidex for the current user. Safe to run again: it picks up changes to the source.
#
#   1. system packages (apt): qemu-system-x86 busybox-static e2fsprogs cpio tmux
#   2. a virtualenv at ${XDG_DATA_HOME:-~/.local/share}/glidex/venv with Glidex installed in it
#   3. links to glidex, glidex-control-plane (and gxctl) in ~/.local/bin
#   4. when online: the Firecracker release binary (checksum verified) into the venv
#   5. the sample guest (kernel + rootfs.ext4) in GLIDEX_HOME (default ~/.glidex)
#
# Environment: PYTHON (default python3), GLIDEX_FIRECRACKER_VERSION (default v1.16.1),
# GLIDEX_HOME. Nothing is written to /tmp.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/glidex"
VENV="$DATA_DIR/venv"
BIN_DIR="$HOME/.local/bin"
PYTHON="${PYTHON:-python3}"
FIRECRACKER_VERSION="${GLIDEX_FIRECRACKER_VERSION:-v1.16.1}"
FIRECRACKER_URL="https://github.com/firecracker-microvm/firecracker/releases/download"
APT_PACKAGES=(qemu-system-x86 busybox-static e2fsprogs cpio tmux)

DONE=()
MISSING=()
FAILED=0
say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
did() { DONE+=("$*"); }
missing() { MISSING+=("$*"); }

summary() {
    echo
    echo "Summary"
    local item
    for item in ${DONE[@]+"${DONE[@]}"}; do echo "  done:    $item"; done
    for item in ${MISSING[@]+"${MISSING[@]}"}; do echo "  missing: $item"; done
}

# Scratch space (pip's builds, downloads) lives beside the venv, never in /tmp.
mkdir -p "$DATA_DIR"
WORK="$(mktemp -d "$DATA_DIR/install-work.XXXXXX")"
export TMPDIR="$WORK"
trap 'rm -rf "$WORK"' EXIT

# --------------------------------------------------------------------------- Python
command -v "$PYTHON" >/dev/null 2>&1 ||
    die "$PYTHON not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "Glidex needs Python 3.11 or newer, but $PYTHON is $("$PYTHON" -V 2>&1); set PYTHON=/path/to/python3.11"

# --------------------------------------------------------------------------- system packages
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=(false)  # no way to become root: installs are reported as missing
fi

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }
APT_UPDATED=0
apt_update() {
    [ "$APT_UPDATED" -eq 1 ] && return 0
    say "apt-get update"
    "${SUDO[@]}" apt-get update -q && APT_UPDATED=1
}
apt_install() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

if ! command -v apt-get >/dev/null 2>&1; then
    warn "apt-get not found: install by hand QEMU (qemu-system-x86_64), a static busybox,"
    warn "e2fsprogs (mkfs.ext4), cpio and tmux; the offline sample guest needs a Debian system"
    missing "system packages (no apt-get): qemu-system-x86 busybox-static e2fsprogs cpio tmux"
else
    NEED=()
    for pkg in "${APT_PACKAGES[@]}"; do
        pkg_installed "$pkg" || NEED+=("$pkg")
    done
    # Debian's python3 makes venvs with pip only with python3-venv (ensurepip).
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && [ ! -x "$VENV/bin/pip" ]; then
        NEED+=(python3-venv)
    fi
    if [ "${#NEED[@]}" -eq 0 ]; then
        did "system packages already installed (${APT_PACKAGES[*]})"
    elif [ "${SUDO[0]:-}" = false ]; then
        warn "not root and no sudo: cannot install ${NEED[*]}"
        missing "system packages: run as root: apt-get install ${NEED[*]}"
    else
        say "Installing system packages: ${NEED[*]}"
        apt_lists_present || apt_update || true
        if apt_install "${NEED[@]}" || { apt_update && apt_install "${NEED[@]}"; }; then
            did "installed system packages: ${NEED[*]}"
        else
            missing "system packages: apt-get install ${NEED[*]} failed"
        fi
    fi
    # The sample guest's kernel is found through apt-cache: it needs package lists.
    if ! apt_lists_present && [ "${SUDO[0]:-}" != false ]; then
        apt_update || warn "apt-get update failed"
    fi
fi

# --------------------------------------------------------------------------- venv + Glidex
if [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    say "Using the virtualenv $VENV"
else
    say "Creating the virtualenv $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv --clear "$VENV" ||
        die "could not create $VENV (Debian: apt-get install python3-venv)"
    did "created the virtualenv $VENV"
fi
say "Installing Glidex from $REPO"
# Build from a copy: the checkout may be read-only for this user, and setuptools' in-tree
# build/ folder could carry deleted modules into the wheel.
SRC="$WORK/src"
mkdir -p "$SRC"
tar -C "$REPO" --exclude=./.git --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=./.venv -cf - . | tar -C "$SRC" -xf -
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$SRC" ||
    die "pip install of $REPO into $VENV failed (see above)"
did "installed Glidex $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("glidex"))') into $VENV"

# --------------------------------------------------------------------------- commands
mkdir -p "$BIN_DIR"
LINKED=()
for cmd in glidex glidex-control-plane gxctl; do
    target="$VENV/bin/$cmd"
    if [ ! -x "$target" ]; then
        [ "$cmd" = gxctl ] || missing "$cmd: not in $VENV/bin"
        continue
    fi
    link="$BIN_DIR/$cmd"
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        warn "$link exists and is not a link: left alone"
        missing "$cmd link ($link is someone else's file)"
        continue
    fi
    ln -sfn "$target" "$link"
    LINKED+=("$cmd")
done
[ "${#LINKED[@]}" -gt 0 ] && did "linked ${LINKED[*]} into $BIN_DIR"
case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *)
        warn "$BIN_DIR is not on your PATH; add this to ~/.profile:"
        warn "  export PATH=\"\$HOME/.local/bin:\$PATH\""
        missing "$BIN_DIR on PATH"
        ;;
esac

# --------------------------------------------------------------------------- Firecracker
FC="$VENV/bin/firecracker"
FC_READY=0
ARCH="$(uname -m)"
if [ -x "$FC" ] && "$FC" --version 2>/dev/null | grep -q "${FIRECRACKER_VERSION#v}"; then
    did "Firecracker $FIRECRACKER_VERSION already in $VENV/bin"
    FC_READY=1
elif ! command -v curl >/dev/null 2>&1; then
    say "curl not found: skipping Firecracker, using qemu"
    missing "Firecracker (needs curl: apt-get install curl)"
else
    tgz="firecracker-$FIRECRACKER_VERSION-$ARCH.tgz"
    url="$FIRECRACKER_URL/$FIRECRACKER_VERSION/$tgz"
    say "Downloading Firecracker $FIRECRACKER_VERSION ($ARCH)"
    if curl -fsL --connect-timeout 5 --max-time 30 -o "$WORK/$tgz.sha256.txt" "$url.sha256.txt" &&
        curl -fsSL --connect-timeout 5 --max-time 600 -o "$WORK/$tgz" "$url"; then
        want="$(awk '{print $1; exit}' "$WORK/$tgz.sha256.txt")"
        got="$(sha256sum "$WORK/$tgz" | awk '{print $1}')"
        if [ -z "$want" ] || [ "$want" != "$got" ]; then
            warn "checksum mismatch for $tgz (expected '$want', got '$got'): not installed"
            missing "Firecracker (checksum mismatch)"
        else
            tar -xzf "$WORK/$tgz" -C "$WORK"
            rel="$WORK/release-$FIRECRACKER_VERSION-$ARCH"
            install -m 0755 "$rel/firecracker-$FIRECRACKER_VERSION-$ARCH" "$FC"
            if [ -f "$rel/jailer-$FIRECRACKER_VERSION-$ARCH" ]; then
                install -m 0755 "$rel/jailer-$FIRECRACKER_VERSION-$ARCH" "$VENV/bin/jailer"
            fi
            did "installed Firecracker $FIRECRACKER_VERSION (sha256 verified) into $VENV/bin"
            FC_READY=1
        fi
    else
        say "offline: using qemu (Firecracker $FIRECRACKER_VERSION could not be downloaded)"
        missing "Firecracker (offline: using qemu; run install.sh again when online)"
    fi
fi

# Glidex picks Firecracker as the default hypervisor when `firecracker` is on PATH.
if [ "$FC_READY" -eq 1 ]; then
    for cmd in firecracker jailer; do
        link="$BIN_DIR/$cmd"
        if [ -x "$VENV/bin/$cmd" ] && { [ ! -e "$link" ] || [ -L "$link" ]; }; then
            ln -sfn "$VENV/bin/$cmd" "$link"
        fi
    done
    did "linked firecracker into $BIN_DIR"
fi

# --------------------------------------------------------------------------- sample guest
SAMPLE_ARGS=(sample)
[ "$FC_READY" -eq 1 ] && SAMPLE_ARGS+=(--hypervisor firecracker)
say "Building the sample guest"
if "$VENV/bin/python" -m glidex_core.cli_images "${SAMPLE_ARGS[@]}"; then
    did "sample guest ready in ${GLIDEX_HOME:-$HOME/.glidex}"
else
    missing "sample guest (see the error above; retry with: $VENV/bin/python -m glidex_core.cli_images sample)"
    FAILED=1
fi

summary
exit "$FAILED"
