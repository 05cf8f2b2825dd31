#!/usr/bin/env bash
# Runs the end-to-end suite: builds the release binary once, runs every
# tests/e2e/test_*.sh (each builds and tears down its own namespaces), and prints the
# total "N passed, M failed". Exits non-zero on any failure. Needs root.
# Usage: tests/e2e/run.sh [test_name ...]   (e.g. test_ipv4; default: all)
#
# E2E_TOPOLOGY=one-armed runs the suites in the one-armed topology (natbox on one port
# behind a VPC router, tests/e2e/topology_onearm.sh); by default those that run in both
# topologies (ONE_ARMED below; the others test the two-port layout itself: its two
# ports' offloads, console, shell, link loss, attacks on each port). E2E_BOX=kernel
# (one-armed only) puts the kernel in natbox's place, so no build; the suites that test
# natbox itself then skip. E2E_WORKERS=N runs natbox with N worker threads and checks
# that every worker received frames over the run.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ONE_ARMED=(test_ipv4 test_ipv6 test_natdiscovery test_mtu test_ports test_unsolicited4 test_iperf test_services test_flowlog test_forward)
if [ "$(id -u)" != 0 ]; then
    echo "tests/e2e/run.sh: needs root (network namespaces, AF_PACKET)"; exit 2
fi
echo "# topology ${E2E_TOPOLOGY:-two-port}, box ${E2E_BOX:-natbox}"
if [ "${E2E_BOX:-natbox}" = natbox ]; then
    echo "# building the release binary"
    (cd "$ROOT" && cargo build --release -p appliance) || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
fi

if [ $# -gt 0 ]; then
    tests=(); for t in "$@"; do tests+=("$HERE/${t%.sh}.sh"); done
elif [ "${E2E_TOPOLOGY:-two-port}" = one-armed ]; then
    tests=(); for t in "${ONE_ARMED[@]}"; do tests+=("$HERE/$t.sh"); done
else
    tests=("$HERE"/test_*.sh)
fi
passed=0 failed=0 broken=()
declare -A worker_frames=()
start=$SECONDS
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    t0=$SECONDS
    out=$(mktemp)
    # Each test bounded in time; its own "N passed, M failed" line is added up.
    timeout 240 bash "$t" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    # E2E_WORKERS=N: the frames each worker received in this suite (lib.sh's finish).
    while read -r k n; do
        worker_frames[$k]=$(( ${worker_frames[$k]:-0} + n ))
    done < <(sed -nE 's/^# worker ([0-9]+): ([0-9]+) frames$/\1 \2/p' "$out")
    rm -f "$out"
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
        passed=$((passed + p)); failed=$((failed + f))
    fi
    if [ "$rc" -ne 0 ] && { [ -z "$line" ] || [ "$f" -eq 0 ]; }; then
        # Died before its closing line (or exited non-zero without a failed check).
        echo "FAIL - $name exited with status $rc"
        failed=$((failed + 1))
    fi
    [ "$rc" -ne 0 ] && broken+=("$name")
    echo "# $name: $((SECONDS - t0)) s"
done
if [ "${E2E_WORKERS:-1}" -gt 1 ] && [ "${E2E_BOX:-natbox}" = natbox ]; then
    # Every worker carried traffic over the run (E2E_WORKERS, lib.sh's write_config).
    for k in $(seq 0 $((E2E_WORKERS - 1))); do
        n=${worker_frames[$k]:-0}
        if [ "$n" -gt 0 ]; then
            echo "ok   - worker $k received $n frames"; passed=$((passed + 1))
        else
            echo "FAIL - worker $k received no frames in any suite"; failed=$((failed + 1))
        fi
    done
fi
echo "# e2e total time $((SECONDS - start)) s${broken:+; failing: ${broken[*]}}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
