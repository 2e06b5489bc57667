#!/usr/bin/env bash
# `npm run demo`: a web desktop in the browser in one line.
#
# Installs what is missing (TigerVNC, xterm, xsetroot from Debian; pnpm; the workspace's
# packages), starts a TigerVNC X server bound to localhost with a one-time password, a coloured
# root window and an xterm, and runs `tsockify --viewer` in front of it. Stays in the
# foreground; Ctrl-C stops everything it started. Safe to re-run: it installs nothing twice,
# picks a free display each time and leaves nothing behind.
#
# Environment:
#   PORT=6080           where tsockify listens
#   HOST=127.0.0.1      tsockify's listen address (0.0.0.0 to reach it from other machines)
#   DEMO_PASSWORD=...   use this VNC password instead of a random one (up to 8 characters)
#   DEMO_NO_PASSWORD=1  no VNC password at all (Xvnc still only listens on localhost)
#   DEMO_GEOMETRY=1280x800
set -euo pipefail

cd "$(dirname "$0")/.."
PORT="${PORT:-6080}"
HOST="${HOST:-127.0.0.1}"
GEOMETRY="${DEMO_GEOMETRY:-1280x800}"

say() { printf 'demo: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ---- what we need --------------------------------------------------------------------------

command -v node >/dev/null || die "Node.js 20.19 or newer is needed (https://nodejs.org or NodeSource); it is not on PATH."
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js $(node -v) is too old: tsockify needs 20.19 or newer."

# TigerVNC, vncpasswd, xterm and xsetroot from Debian, only when a binary is missing.
bash scripts/system-deps.sh demo

if command -v pnpm >/dev/null; then pnpm=(pnpm); else pnpm=(npx --yes pnpm@10); fi
if [[ ! -d node_modules/.pnpm || ! -f packages/cli/dist/main.js || ! -f packages/viewer/dist/index.js ]]; then
  say "installing and building the workspace (${pnpm[*]} install)"
  "${pnpm[@]}" install
fi
[[ -f packages/cli/dist/main.js ]] || "${pnpm[@]}" run build

free_tcp_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port_in_use() {
  node -e 'const s=require("net").createServer();s.once("error",()=>process.exit(0));s.listen(Number(process.argv[1]),process.argv[2],()=>s.close(()=>process.exit(1)))' "$1" "$2"
}
port_in_use "$PORT" "$HOST" && die "port $PORT on $HOST is in use (another demo?). Choose another: PORT=6081 npm run demo"

# ---- start, and stop on the way out --------------------------------------------------------

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tsockify-demo.XXXXXX")
pids=()
display=''
xvnc_pid=''
cleanup() {
  trap - EXIT INT TERM
  local pid
  # Newest first: tsockify, then the X clients, then the X server.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Xvnc removes its lock and socket when it exits cleanly; after a KILL, remove ours only.
  if [[ -n $display && -n $xvnc_pid && -f /tmp/.X${display}-lock ]] \
    && [[ $(tr -d ' \n' </tmp/.X${display}-lock) == "$xvnc_pid" ]]; then
    rm -f "/tmp/.X${display}-lock" "/tmp/.X11-unix/X${display}"
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A display number nobody uses: no lock file and no socket. Xvnc's own -rfbport is a free TCP
# port, not 5900+N, so a VNC server already on 5901 does not get in the way.
display=1
while [[ -e /tmp/.X${display}-lock || -e /tmp/.X11-unix/X${display} ]]; do display=$((display + 1)); done
rfbport=$(free_tcp_port)

security=(-SecurityTypes None)
password=''
if [[ -z ${DEMO_NO_PASSWORD:-} ]]; then
  # VNC passwords are at most 8 characters.
  password="${DEMO_PASSWORD:-$(node -e 'const a="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";let s="";for(let i=0;i<8;i++)s+=a[require("crypto").randomInt(a.length)];console.log(s)')}"
  printf '%s\n' "$password" | vncpasswd -f >"$workdir/passwd"
  chmod 600 "$workdir/passwd"
  security=(-SecurityTypes VncAuth -PasswordFile "$workdir/passwd")
fi

Xvnc ":$display" -rfbport "$rfbport" -localhost -nolisten tcp -noreset \
  -geometry "$GEOMETRY" -depth 24 -desktop "tsockify demo" "${security[@]}" \
  >"$workdir/xvnc.log" 2>&1 &
xvnc_pid=$!
pids+=("$xvnc_pid")

# Ready when it answers the RFB banner (bounded: 10 s).
ready=''
for _ in $(seq 100); do
  kill -0 "$xvnc_pid" 2>/dev/null || break
  if banner=$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$rfbport && head -c 12 <&3" 2>/dev/null) \
    && [[ $banner == 'RFB 003.008' ]]; then ready=1; break; fi
  sleep 0.1
done
[[ -n $ready ]] || { cat "$workdir/xvnc.log" >&2; die "Xvnc :$display did not start"; }

export DISPLAY=":$display"
(cd "$HOME" && exec xterm -geometry 90x28+40+40 -fa Monospace -fs 11 -title 'tsockify demo') >"$workdir/xterm.log" 2>&1 &
pids+=("$!")
xsetroot -solid '#1e90ff'

node packages/cli/bin/tsockify.js --viewer "$HOST:$PORT" "127.0.0.1:$rfbport" &
tsockify_pid=$!
pids+=("$tsockify_pid")
for _ in $(seq 100); do
  kill -0 "$tsockify_pid" 2>/dev/null || { wait "$tsockify_pid" || true; die "tsockify did not start (see above)"; }
  port_in_use "$PORT" "$HOST" && break
  sleep 0.1
done

urlhost=$HOST
[[ $HOST == 127.0.0.1 || $HOST == 0.0.0.0 || $HOST == '::' ]] && urlhost=localhost
echo
echo "  Web desktop:   http://$urlhost:$PORT/"
if [[ -n $password ]]; then
  echo "  VNC password:  $password   (new on every run)"
fi
echo "  X display :$display, VNC on 127.0.0.1:$rfbport. Point at the xterm to type into it."
echo "  Ctrl-C stops it all."
echo

wait "$tsockify_pid" || say "tsockify exited with status $?"
