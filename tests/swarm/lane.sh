#!/bin/bash
# The "swarm" CI lane (.ci/run): tests/swarm in DKSWARM_SHARDS (default 3) pytest
# processes at the same time, against one private engine (tests/swarm/engine.sh).
#
# The swarm tests mostly wait (tasks starting, staying up for the converge check,
# rolling updates): run one after the other they were the longest lane.  The
# engine is started here once, before the processes, and stopped after all of
# them (each runs with DKSWARM_KEEP=1, so none stops it under the others).  Each
# process runs its part of the tests (DKSWARM_SHARD=I/N, tests/swarm/conftest.py:
# the same split every time, the parts disjoint and together all of them); the
# tests name their objects with their own prefix and reserve their overlay
# subnets and published ports (conftest.py, Reservations).  The multi-node test
# starts its own two engines (dkswarm-m, dkswarm-w1).
#
# Output: each part's pytest output in turn (each with its slowest tests); exit
# non-zero when any part failed.  Arguments are passed to every pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
shards=${DKSWARM_SHARDS:-3}
logs=$(mktemp -d)
stop() {
    bash tests/swarm/engine.sh stop dkswarm || true
    rm -rf "$logs"
}
trap stop EXIT
bash tests/swarm/engine.sh start dkswarm > /dev/null
pids=()
for i in $(seq "$shards"); do
    DKSWARM_KEEP=1 DKSWARM_SHARD="$i/$shards" \
        .venv/bin/pytest -q -p no:cacheprovider --durations=15 "$@" tests/swarm \
        < /dev/null > "$logs/$i.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
for i in $(seq "$shards"); do
    echo "----- tests/swarm, part $i of $shards (DKSWARM_SHARD=$i/$shards) -----"
    cat "$logs/$i.log"
done
exit $status
