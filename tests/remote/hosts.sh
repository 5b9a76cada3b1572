#!/bin/bash
# Remote Docker hosts reached over ssh, for tests/remote (issue 20).
#
#   hosts.sh start [N]      start hosts 1..N (default 2; idempotent)
#   hosts.sh stop [N]       stop them, delete their namespaces, data and keys
#   hosts.sh env [N]        print, per host, "I ADDRESS SOCKET": its sshd's address and
#                           its dockerd's socket on this side
#   hosts.sh sshd-stop I    stop host I's sshd (its dockerd keeps running)
#   hosts.sh sshd-start I   start host I's sshd again
#   hosts.sh cut I          take host I's end of its link down (unreachable, no answer)
#   hosts.sh uncut I        bring it up again
#
# Host I is a network namespace dkremoteI joined to this side by a veth pair
# (this side 172.28.80.(4I+1)/30, the namespace 172.28.80.(4I+2)/30), with
#  - a private dockerd (data /var/lib/dockeroo-dkremoteI, socket and exec root under
#    /run/dockeroo-dkremoteI; docker0 172.28.(84+I).1/24, address pool 172.28.88.0/21:
#    everything inside 172.28.80.0/20, and inside its own namespace; plain-HTTP
#    registries on this side's addresses 172.28.80.0/24 allowed: tests/remote's
#    registry listens on host 1's peer address);
#  - an sshd listening on the namespace's address only, with its own host key, its
#    own authorized_keys (the test key below) and LogLevel VERBOSE to
#    /run/dockeroo-dkremoteI/sshd.log (tests count "Accepted publickey" lines).
#    It runs in a private mount namespace where the dockerd's socket is bound
#    over /var/run/docker.sock: on host I, the default docker socket and the docker
#    client on PATH (the filesystem is shared) are host I's, as on a real host.
# The client key is /run/dockeroo-dkremote/client_key (made once, 0600, root only).
set -euo pipefail

cmd=${1:-}
arg=${2:-2}
base=/run/dockeroo-dkremote
key=$base/client_key

say() { printf '[hosts.sh] %s\n' "$*" >&2; }
run_dir() { echo "/run/dockeroo-dkremote$1"; }
addr() { echo "172.28.80.$(( 4 * $1 + 2 ))"; }
peer() { echo "172.28.80.$(( 4 * $1 + 1 ))"; }
answers() { DOCKER_HOST="unix://$(run_dir "$1")/docker.sock" timeout 10 docker info \
                --format '{{.ServerVersion}}' > /dev/null 2>&1; }
# a process killed here may stay a zombie (its parent, PID 1 of a container, may not reap it)
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null &&
          ! grep -q '^State:[[:space:]]*Z' "/proc/$(cat "$1")/status" 2> /dev/null; }

client_key() {
    mkdir -p "$base"
    chmod 700 "$base"
    [ -s "$key" ] || ssh-keygen -q -t ed25519 -N '' -C dockeroo-remote-tests -f "$key"
}

link() {  # the namespace and its veth pair
    local i=$1 ns=dkremote$1
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    ip -n "$ns" link set lo up
    if ! ip link show "dkrh$i" > /dev/null 2>&1; then
        ip link add "dkrh$i" type veth peer name "dkrn$i" netns "$ns"
        ip addr add "$(peer "$i")/30" dev "dkrh$i"
        ip -n "$ns" addr add "$(addr "$i")/30" dev "dkrn$i"
    fi
    ip link set "dkrh$i" up
    ip -n "$ns" link set "dkrn$i" up
    ip -n "$ns" route replace default via "$(peer "$i")"
}

start_dockerd() {
    local i=$1 run data
    run=$(run_dir "$i")
    data=/var/lib/dockeroo-dkremote$i
    answers "$i" && return 0
    mkdir -p "$run/exec" "$data"
    if ! alive "$run/docker.pid"; then
        say "host $i: starting dockerd (log: $run/dockerd.log)"
        setsid nsenter --net="/run/netns/dkremote$i" \
            dockerd --host "unix://$run/docker.sock" --data-root "$data" --exec-root "$run/exec" \
                    --pidfile "$run/docker.pid" --bip "172.28.$(( 84 + i )).1/24" \
                    --default-address-pool "base=172.28.88.0/21,size=24" \
                    --insecure-registry 172.28.80.0/24 \
                    --cgroup-parent "/dockeroo-dkremote$i" \
            > "$run/dockerd.log" 2>&1 < /dev/null &
    fi
}

wait_dockerd() {
    local i=$1
    for _ in $(seq 90); do
        answers "$i" && return 0
        sleep 1
    done
    echo "hosts.sh: host $i's dockerd did not answer within 90 s:" >&2
    tail -n 20 "$(run_dir "$i")/dockerd.log" >&2 || true
    exit 1
}

start_sshd() {
    local i=$1 run
    run=$(run_dir "$i")
    alive "$run/sshd.pid" && return 0
    mkdir -p "$run" /run/sshd
    [ -s "$run/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$run/host_key"
    cp "$key.pub" "$run/authorized_keys"
    cat > "$run/sshd_config" << EOF
ListenAddress $(addr "$i"):22
HostKey $run/host_key
PidFile $run/sshd.pid
AuthorizedKeysFile $run/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
X11Forwarding no
EOF
    say "host $i: starting sshd on $(addr "$i") (log: $run/sshd.log)"
    setsid nsenter --net="/run/netns/dkremote$i" \
        unshare --mount --propagation private \
        sh -c 'mount --bind "$1/docker.sock" /run/docker.sock &&
               exec /usr/sbin/sshd -f "$1/sshd_config" -E "$1/sshd.log"' sh "$run" \
        < /dev/null > /dev/null 2>&1
    for _ in $(seq 50); do
        alive "$run/sshd.pid" && return 0
        sleep 0.1
    done
    echo "hosts.sh: host $i's sshd did not start:" >&2
    tail -n 20 "$run/sshd.log" >&2 || true
    exit 1
}

stop_pidfile() {  # stop_pidfile FILE WHAT: TERM, then KILL after 20 s
    local p
    [ -s "$1" ] || return 0
    p=$(cat "$1")
    kill -0 "$p" 2> /dev/null || return 0
    say "stopping $2 $p"
    kill -TERM "$p" 2> /dev/null || true
    for _ in $(seq 40); do
        kill -0 "$p" 2> /dev/null || return 0
        sleep 0.5
    done
    kill -KILL "$p" 2> /dev/null || true
}

stop_sshd() {  # the listener and its sessions: every process in its mount namespace
    local run p ns
    run=$(run_dir "$1")
    alive "$run/sshd.pid" || return 0
    ns=$(readlink "/proc/$(cat "$run/sshd.pid")/ns/mnt" || true)
    say "stopping host $1's sshd $(cat "$run/sshd.pid") and its sessions"
    [ -n "$ns" ] || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/mnt" 2> /dev/null)" = "$ns" ] && kill -KILL "${p#/proc/}" 2> /dev/null
    done
    rm -f "$run/sshd.pid"
    return 0
}

stop_host() {
    local i=$1 run data p
    run=$(run_dir "$i")
    data=/var/lib/dockeroo-dkremote$i
    stop_sshd "$i"
    stop_pidfile "$run/docker.pid" "host $i's dockerd"
    for p in $(pgrep -f -- "$run/exec/" || true); do
        kill -KILL "$p" 2> /dev/null || true
    done
    for _ in 1 2 3; do
        awk -v a="$run/" -v b="$data/" '$2 ~ "^"a || $2 ~ "^"b {print $2}' /proc/mounts \
            | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
    done
    ip link del "dkrh$i" 2> /dev/null || true
    [ -e "/run/netns/dkremote$i" ] && ip netns del "dkremote$i"
    rm -rf "$data" "$run"
    for dir in /sys/fs/cgroup/*/"dockeroo-dkremote$i" /sys/fs/cgroup/"dockeroo-dkremote$i"; do
        [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2> /dev/null || true
    done
}

check_index() {
    case "$1" in
        [1-9]) ;;
        *) echo "hosts.sh: host numbers are 1 to 9" >&2; exit 2 ;;
    esac
}

case "$cmd" in
    start)
        check_index "$arg"
        for tool in ip nsenter unshare /usr/sbin/sshd ssh-keygen dockerd; do
            command -v "$tool" > /dev/null || { echo "hosts.sh: $tool is needed" >&2; exit 1; }
        done
        client_key
        for i in $(seq "$arg"); do link "$i"; start_dockerd "$i"; done
        for i in $(seq "$arg"); do wait_dockerd "$i"; start_sshd "$i"; done ;;
    stop)
        check_index "$arg"
        for i in $(seq "$arg"); do stop_host "$i"; done
        rm -rf "$base" ;;
    env)
        check_index "$arg"
        for i in $(seq "$arg"); do echo "$i $(addr "$i") $(run_dir "$i")/docker.sock"; done ;;
    sshd-stop) check_index "$arg"; stop_sshd "$arg" ;;
    sshd-start) check_index "$arg"; start_sshd "$arg" ;;
    # the namespace's end goes down: this side's route stays (packets are dropped),
    # nothing leaves the machine
    cut) check_index "$arg"; ip -n "dkremote$arg" link set "dkrn$arg" down ;;
    uncut) check_index "$arg"; ip -n "dkremote$arg" link set "dkrn$arg" up
           ip -n "dkremote$arg" route replace default via "$(peer "$arg")" ;;
    *) echo "usage: hosts.sh start|stop|env [N] | sshd-stop|sshd-start|cut|uncut I" >&2; exit 2 ;;
esac
