#!/usr/bin/env bash
# The BGP lab's peer: netns bgplab (netloom's) and bgppeer (BIRD's), a veth
# between them, BIRD started in bgppeer. `up`, `routes`, `down`.
# BGPLAB_NS, BGPPEER_NS and BGPPEER_RUN rename them (the tests do).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lab="${BGPLAB_NS:-bgplab}"
peer="${BGPPEER_NS:-bgppeer}"
run="${BGPPEER_RUN:-/run/netloom-bgplab-peer}"
case "${1:-up}" in
up)
  mkdir -p "$run"
  ip netns add "$lab" 2>/dev/null || true
  ip netns add "$peer" 2>/dev/null || true
  if ! ip -n "$lab" link show bgp0 >/dev/null 2>&1; then
    ip link add bgp0 netns "$lab" type veth peer name bgp1 netns "$peer"
    ip -n "$lab" addr add 10.255.0.1/30 dev bgp0
    ip -n "$peer" addr add 10.255.0.2/30 dev bgp1
    ip -n "$lab" link set bgp0 up
    ip -n "$peer" link set bgp1 up
    ip -n "$peer" link set lo up
  fi
  ip netns exec "$peer" bird -c "$here/bird.conf" -s "$run/bird.sock" -P "$run/bird.pid"
  echo "BIRD runs in netns $peer; now: netloom apply $here/lab.toml"
  ;;
routes)
  birdc -s "$run/bird.sock" show route all
  ;;
down)
  [ -f "$run/bird.pid" ] && kill "$(cat "$run/bird.pid")" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
  rm -rf "$run"
  echo "peer removed; run 'netloom destroy $here/lab.toml' for netloom's side, then 'ip netns del bgplab'"
  ;;
*) echo "usage: $0 up|routes|down" >&2; exit 2 ;;
esac
