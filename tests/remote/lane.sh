#!/bin/bash
# The "remote" CI lane (.ci/run): Docker engines reached over ssh (issue 20).
#
#  1. tests/remote: connections counted, host keys, keys and faults, two hosts;
#  2. a subset of tests/integration with DOCKER_HOST=ssh://root@HOST1: every
#     buildout of those tests reaches host 1 through dockeroo's one ssh
#     connection (a DOCKER_HOST with an ssh:// endpoint is tunnelled like an
#     engine-url), while the tests' own checks read host 1's dockerd directly
#     (DOCKEROO_TEST_DIRECT_HOST, tests/support/engine.py).
#     The lane keeps to volumes, networks and copies (about 5 minutes over ssh on
#     the loaded 2-core CI machine); test_run, test_build, test_plan_run and
#     test_copy_sizes pass this way too (16 minutes more: run them by hand with
#     the same environment).  tests/remote covers runs, builds, copies, plan,
#     pushes and pulls over ssh.  Left out: the integration tests' pushes and
#     pulls (their registry listens on this side's 127.0.0.1, which a remote
#     engine cannot reach; tests/remote pushes and pulls through a registry on
#     the hosts' link), the Gentoo tests (hours, and nothing in them depends on
#     where the engine is), the fault sweeps (they kill every docker call of a
#     local run; tests/remote kills runs over ssh), and the tests of local
#     engine selection (DOCKER_HOST is the remote one here), and the tests of bad
#     options and names (refused before any engine is asked).
#
# The private ssh client (the rig's key, no agent, a known_hosts of the hosts' keys)
# is a wrapper named ssh first on PATH: the real ~/.ssh is never read.
set -euo pipefail
cd "$(dirname "$0")/../.."
rig=tests/remote/hosts.sh
bash "$rig" start 2
client=$(mktemp -d)
trap 'bash "$rig" stop 2; rm -rf "$client"' EXIT
mkdir "$client/bin"
cp /run/dockeroo-dkremote/client_key "$client/key"
while read -r i address socket; do
    echo "$address $(cut -d' ' -f1,2 "$(dirname "$socket")/host_key.pub")" >> "$client/known_hosts"
done < <(bash "$rig" env 2)
cat > "$client/config" << CFG
Host *
  IdentityFile $client/key
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile $client/known_hosts
  GlobalKnownHostsFile /dev/null
CFG
printf '#!/bin/sh\nexec %s -F %s "$@"\n' "$(command -v ssh)" "$client/config" > "$client/bin/ssh"
chmod +x "$client/bin/ssh"
read -r _ address socket < <(bash "$rig" env 1)

status=0
DKREMOTE_KEEP=1 .venv/bin/pytest -q -p no:cacheprovider --durations=10 tests/remote || status=1
PATH="$client/bin:$PATH" DOCKER_HOST="ssh://root@$address" \
DOCKEROO_TEST_DIRECT_HOST="unix://$socket" \
    .venv/bin/pytest -q -p no:cacheprovider --durations=10 -k "not bad_options and not bad_names" \
        tests/integration/test_volume.py tests/integration/test_network.py \
        tests/integration/test_copy.py || status=1
exit $status
