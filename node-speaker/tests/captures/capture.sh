#!/usr/bin/env bash
# Records what BIRD 2, GoBGP 3 and FRR 8 send to a BGP speaker, as hex files the codec
# tests replay (tests/captures.rs). Re-run by hand when a router version changes:
#
#   sudo node-speaker/tests/captures/capture.sh        # writes *.hex next to this script
#
# Topology: two network namespaces joined by a veth pair, documentation addresses only.
#   wirecap-spk  wcap0 192.0.2.1/24 2001:db8:1::1/64   listener.py, one port per session
#   wirecap-rtr  wcap1 192.0.2.2-4/24 2001:db8:1::2-4/64 (+ its link-local address)
#                BIRD AS 64502 (.2, IPv4 and IPv6 sessions), GoBGP AS 64503 (.3),
#                FRR AS 64504 (.4)
# The IPv6 BIRD session is on-link, so BIRD sends global + link-local next hops
# (bgp-stack.md gotcha 13). Nothing leaves the namespaces; processes are stopped by pid.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d /tmp/wirecap.XXXXXX)"
SPK=wirecap-spk
RTR=wirecap-rtr
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/bird.pid" ] && kill "$(cat "$WORK/bird.pid")" 2>/dev/null || true
  [ -f "$WORK/bgpd.pid" ] && kill "$(cat "$WORK/bgpd.pid")" 2>/dev/null || true
  ip netns del "$SPK" 2>/dev/null || true
  ip netns del "$RTR" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$SPK"
ip netns add "$RTR"
for ns in "$SPK" "$RTR"; do
  # No duplicate address detection: a tentative link-local address is invisible to
  # BIRD, which then sends no link-local next hop.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip netns exec "$ns" ip link set lo up
done
ip link add wcap0 netns "$SPK" type veth peer name wcap1 netns "$RTR"
ip netns exec "$SPK" ip addr add 192.0.2.1/24 dev wcap0
ip netns exec "$SPK" ip addr add 2001:db8:1::1/64 dev wcap0 nodad
ip netns exec "$SPK" ip link set wcap0 up
for i in 2 3 4; do
  ip netns exec "$RTR" ip addr add "192.0.2.$i/24" dev wcap1
  ip netns exec "$RTR" ip addr add "2001:db8:1::$i/64" dev wcap1 nodad
done
ip netns exec "$RTR" ip link set wcap1 up
sleep 2
ip netns exec "$RTR" ip -6 addr show dev wcap1 scope link | grep -q fe80 || { echo 'no link-local address on wcap1' >&2; exit 1; }

listen() { # name address port
  ip netns exec "$SPK" python3 "$HERE/listener.py" --listen "$2" --port "$3" \
    --out "$WORK/$1.hex" --seconds 25 2>"$WORK/$1.log" &
  PIDS+=($!)
}
listen bird-ipv6-session 2001:db8:1::1 1790
listen bird-ipv4-session 192.0.2.1 1791
listen gobgp 192.0.2.1 1792
listen frr 192.0.2.1 1793
sleep 0.5

# --- BIRD: static routes with communities; 40 IPv6 /64s make MP_REACH exceed 255 octets.
{
  echo 'router id 192.0.2.2;'
  echo 'protocol device { }'
  echo 'protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.128/25 blackhole; }'
  echo 'protocol static s6 { ipv6;'
  for i in $(seq 0 39); do printf '  route 2001:db8:%x::/64 blackhole;\n' $((0x100 + i)); done
  echo '}'
  cat <<'EOF'
filter wirecap_tag {
  bgp_community.add((64502, 100));
  bgp_large_community.add((64502, 1, 2));
  bgp_med = 50;
  accept;
}
protocol bgp spk6 {
  local 2001:db8:1::2 as 64502; neighbor 2001:db8:1::1 port 1790 as 64500;
  interface "wcap1"; direct;
  hold time 90; connect delay time 1; connect retry time 2; graceful restart on;
  ipv4 { import all; export filter wirecap_tag; next hop address 192.0.2.2; };
  ipv6 { import all; export filter wirecap_tag; };
}
protocol bgp spk4 {
  local 192.0.2.2 as 64502; neighbor 192.0.2.1 port 1791 as 64500;
  hold time 90; connect delay time 1; connect retry time 2; graceful restart on;
  ipv4 { import all; export filter wirecap_tag; };
  ipv6 { import all; export filter wirecap_tag; next hop address 2001:db8:1::2; };
}
EOF
} >"$WORK/bird.conf"
ip netns exec "$RTR" bird -c "$WORK/bird.conf" -s "$WORK/bird.ctl" -P "$WORK/bird.pid"

# --- GoBGP: routes added over its API before the session comes up.
cat >"$WORK/gobgpd.toml" <<'EOF'
[global.config]
  as = 64503
  router-id = "192.0.2.3"
  port = -1
  local-address-list = ["192.0.2.3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.1"
    peer-as = 64500
  [neighbors.transport.config]
    local-address = "192.0.2.3"
    remote-port = 1792
  [neighbors.timers.config]
    connect-retry = 2
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
    notification-enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOF
ip netns exec "$RTR" gobgpd -f "$WORK/gobgpd.toml" -p --api-hosts 127.0.0.1:50051 --pprof-disable \
  >"$WORK/gobgpd.log" 2>&1 &
PIDS+=($!)
sleep 1.5
G="ip netns exec $RTR gobgp -u 127.0.0.1 -p 50051"
$G global rib add -a ipv4 203.0.113.64/26 nexthop 192.0.2.3 community 64503:100 large-community 64503:1:2 med 50
$G global rib add -a ipv6 2001:db8:aaaa::/48 nexthop 2001:db8:1::3 community 64503:100

# --- FRR bgpd alone (-Z: no zebra), no listening socket.
cat >"$WORK/bgpd.conf" <<'EOF'
router bgp 64504
 bgp router-id 192.0.2.4
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.0.2.1 remote-as 64500
 neighbor 192.0.2.1 port 1793
 neighbor 192.0.2.1 update-source 192.0.2.4
 neighbor 192.0.2.1 timers connect 2
 address-family ipv4 unicast
  network 203.0.113.128/25
  neighbor 192.0.2.1 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:300::/48
  neighbor 192.0.2.1 activate
  neighbor 192.0.2.1 route-map V6NH out
 exit-address-family
route-map V6NH permit 10
 set ipv6 next-hop global 2001:db8:1::4
EOF
mkdir -p "$WORK/frr"
ip netns exec "$RTR" /usr/lib/frr/bgpd -d -Z -S -P 0 -p 0 -l 192.0.2.4 -f "$WORK/bgpd.conf" \
  -i "$WORK/bgpd.pid" --vty_socket "$WORK/frr" >"$WORK/bgpd.log" 2>&1 || true

for p in "${PIDS[@]:0:4}"; do wait "$p" || true; done
for f in bird-ipv6-session bird-ipv4-session gobgp frr; do
  echo "== $f: $(wc -l <"$WORK/$f.hex" 2>/dev/null || echo 0) messages; $(tail -1 "$WORK/$f.log")"
  [ -s "$WORK/$f.hex" ] && cp "$WORK/$f.hex" "$HERE/$f.hex"
done
