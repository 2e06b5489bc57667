#!/usr/bin/env bash
# Install the Debian packages the tests and the demo use, if any is missing.
# The tests run against real parts: TigerVNC, Chromium, Python websockify, noVNC, Redis.
# Usage: scripts/system-deps.sh [demo|test]   (demo installs only what the desktop needs)
set -euo pipefail
what=${1:-test}

# binary → Debian package
declare -A need=(
  [Xvnc]=tigervnc-standalone-server
  [vncpasswd]=tigervnc-tools
  [xsetroot]=x11-xserver-utils
  [xterm]=xterm
)
if [ "$what" = test ]; then
  need+=(
    [chromium]=chromium
    [websockify]=websockify
    [redis-server]=redis-server
    [xinput]=xinput
    [xdotool]=xdotool
    [xwininfo]=x11-utils
    [openssl]=openssl
  )
fi
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
if [ "$what" = test ] && [ ! -f /usr/share/novnc/vnc.html ]; then missing+=(novnc); fi
# Debian's python3: the tests mint tokens with Debian's python3-jwcrypto and python3-itsdangerous.
if [ "$what" = test ] && ! /usr/bin/python3 -c 'import jwcrypto, itsdangerous' 2>/dev/null; then
  missing+=(python3-jwcrypto python3-itsdangerous)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "tsockify: installing Debian packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "tsockify: missing packages (${missing[*]}) and not root: run as root or install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" fonts-dejavu-core >/dev/null
