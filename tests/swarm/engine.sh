#!/bin/bash
# A private Docker engine for the swarm tests, in its own network namespace.
#
#   engine.sh start [NAME]   start it (idempotent) and make it a single-node swarm manager
#   engine.sh daemon [NAME]  start it without swarm mode (a node that joins another swarm)
#   engine.sh stop [NAME]    leave the swarm, stop it, delete its namespace and its data
#   engine.sh status [NAME]  exit 0 when it answers
#   engine.sh env [NAME]     print DOCKER_HOST=... for it
#
# NAME (default "dkswarm") selects an instance: socket /run/dockeroo-NAME/docker.sock,
# data /var/lib/dockeroo-NAME, network namespace NAME.  Why (docs/swarm.rst): swarm
# mode changes the whole engine, so it never runs on the engine other tests use.
#
# The daemon runs in the host's mount namespace (dockerd needs the host's cgroup
# mounts; `ip netns exec` remounts /sys and hides them) but in its own network
# namespace: its docker0, docker_gwbridge, overlay interfaces and iptables rules
# cannot touch the host's.  Addresses stay in 172.28.0.0/14 all the same
# (engine-facts: never 10.0.0.0/8 or 192.0.2.0/24).
#
# Environment: DKSWARM_ADDR (default 127.0.0.1) is the address the swarm is advertised
# on; DKSWARM_LINK=PEER:CIDR:PEER_CIDR connects the namespace to namespace PEER with a
# veth pair first (a multi-node test: this side gets CIDR, PEER gets PEER_CIDR).
set -euo pipefail

cmd=${1:-}
name=${2:-dkswarm}
case "$name" in
    dkswarm*) ;;
    *) echo "engine.sh: instance names start with dkswarm" >&2; exit 2 ;;
esac
run=/run/dockeroo-$name
data=/var/lib/dockeroo-$name
sock=$run/docker.sock
export DOCKER_HOST=unix://$sock
# a different /24 per instance for its docker0 (inside its own namespace)
n=$(( $(printf '%s' "$name" | cksum | cut -d' ' -f1) % 200 + 20 ))

say() { printf '[engine.sh %s] %s\n' "$name" "$*" >&2; }
dk() { timeout "${T:-60}" docker "$@"; }
answers() { T=10 dk info --format '{{.ServerVersion}}' > /dev/null 2>&1; }
pid() { [ -s "$run/docker.pid" ] && cat "$run/docker.pid" 2>/dev/null || true; }

start_daemon() {
    if answers; then
        return 0
    fi
    command -v ip > /dev/null || { echo "engine.sh: ip (iproute2) is needed" >&2; exit 1; }
    command -v nsenter > /dev/null || { echo "engine.sh: nsenter (util-linux) is needed" >&2; exit 1; }
    if [ ! -e "/run/netns/$name" ]; then
        ip netns add "$name"
    fi
    ip netns exec "$name" ip link set lo up
    if [ -n "${DKSWARM_LINK:-}" ]; then
        IFS=: read -r peer mine theirs <<< "$DKSWARM_LINK"
        case "$peer" in dkswarm*) ;; *) echo "engine.sh: peer names start with dkswarm" >&2; exit 2 ;; esac
        if [ ! -e "/run/netns/$peer" ]; then
            ip netns add "$peer"
        fi
        if ! ip -n "$name" link show dkveth0 > /dev/null 2>&1; then
            ip link add dkveth0 netns "$name" type veth peer name dkveth1 netns "$peer"
            ip -n "$name" addr add "$mine" dev dkveth0
            ip -n "$peer" addr add "$theirs" dev dkveth1
        fi
        ip -n "$name" link set dkveth0 up
        ip -n "$peer" link set dkveth1 up
    fi
    mkdir -p "$run/exec" "$data"
    local old
    old=$(pid)
    if [ -n "$old" ] && kill -0 "$old" 2> /dev/null; then
        say "dockerd $old does not answer yet"
    else
        say "starting dockerd (log: $run/dockerd.log)"
        # its own session, no terminal, no inherited pipes (nor the lock, fd 9): it
        # outlives this script
        setsid nsenter --net="/run/netns/$name" \
            dockerd --host "unix://$sock" --data-root "$data" --exec-root "$run/exec" \
                    --pidfile "$run/docker.pid" --bip "172.28.$n.1/24" \
                    --default-address-pool "base=172.31.0.0/16,size=24" \
                    --cgroup-parent "/dockeroo-$name" \
            > "$run/dockerd.log" 2>&1 < /dev/null 9>&- &
    fi
    for _ in $(seq 60); do
        answers && return 0
        sleep 1
    done
    echo "engine.sh: dockerd did not answer within 60 s; last lines of $run/dockerd.log:" >&2
    grep -v 'module=grpc' "$run/dockerd.log" | tail -n 20 >&2 || true
    exit 1
}

swarm_state() { T=10 dk info --format '{{.Swarm.LocalNodeState}}' 2> /dev/null || true; }

start_swarm() {
    if [ "$(swarm_state)" = active ]; then
        check_ingress
        return 0
    fi
    # swarm's own defaults are in 10.0.0.0/8: docker_gwbridge first, pools given
    if ! dk network inspect docker_gwbridge > /dev/null 2>&1; then
        dk network create -d bridge --subnet 172.29.254.0/24 \
            --opt com.docker.network.bridge.name=docker_gwbridge \
            --opt com.docker.network.bridge.enable_icc=false \
            --opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge > /dev/null
    fi
    say "swarm init"
    dk swarm init --advertise-addr "${DKSWARM_ADDR:-127.0.0.1}" \
        --default-addr-pool 172.30.0.0/16 --default-addr-pool-mask-length 24 > /dev/null
    check_ingress
}

check_ingress() {
    local subnets
    for _ in $(seq 30); do
        subnets=$(dk network inspect ingress --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' \
                  2> /dev/null || true)
        [ -n "$subnets" ] && break
        sleep 1
    done
    for subnet in $subnets; do
        case "$subnet" in
            172.30.*) ;;
            *) echo "engine.sh: ingress network has subnet $subnet, outside 172.30.0.0/16:" \
                    "leaving the swarm" >&2
               dk swarm leave --force > /dev/null 2>&1 || true
               exit 1 ;;
        esac
    done
    [ -n "$subnets" ] || { echo "engine.sh: no ingress network after swarm init" >&2; exit 1; }
}

stop() {
    if answers; then
        if [ "$(swarm_state)" != inactive ]; then
            dk swarm leave --force > /dev/null 2>&1 || true
        fi
    fi
    local p
    p=$(pid)
    if [ -n "$p" ] && kill -0 "$p" 2> /dev/null; then
        say "stopping dockerd $p"
        kill -TERM "$p"
        for _ in $(seq 40); do
            kill -0 "$p" 2> /dev/null || break
            sleep 0.5
        done
        if kill -0 "$p" 2> /dev/null; then
            say "dockerd $p did not stop in 20 s: killing it"
            kill -KILL "$p" || true
        fi
    fi
    # what the daemon may leave when killed: its containerd and shims (found by
    # their socket under this instance's exec root), then mounts below its dirs
    for p in $(pgrep -f -- "$run/exec/" || true); do
        kill -KILL "$p" 2> /dev/null || true
    done
    for _ in 1 2 3; do
        awk -v a="$run/" -v b="$data/" '$2 ~ "^"a || $2 ~ "^"b {print $2}' /proc/mounts \
            | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
    done
    if [ -e "/run/netns/$name" ]; then
        ip netns del "$name"
    fi
    rm -rf "$data" "$run"
    # the (empty) cgroups of its --cgroup-parent, deepest first
    for dir in /sys/fs/cgroup/*/"dockeroo-$name" /sys/fs/cgroup/"dockeroo-$name"; do
        [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2> /dev/null || true
    done
}

# one engine.sh at a time per instance (pytest processes sharing the engine may
# start it together)
case "$cmd" in
    start|daemon|stop)
        mkdir -p /run/lock
        exec 9> "/run/lock/dockeroo-$name.lock"
        flock 9 ;;
esac

case "$cmd" in
    start) start_daemon; start_swarm; echo "DOCKER_HOST=$DOCKER_HOST" ;;
    daemon) start_daemon; echo "DOCKER_HOST=$DOCKER_HOST" ;;
    stop) stop ;;
    status) answers ;;
    env) echo "DOCKER_HOST=$DOCKER_HOST" ;;
    *) echo "usage: engine.sh start|daemon|stop|status|env [NAME]" >&2; exit 2 ;;
esac
