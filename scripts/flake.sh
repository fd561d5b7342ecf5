#!/usr/bin/env bash
# Flake hunt: runs the timing-sensitive packages FLAKE_COUNT times each
# (go test -count), one package at a time, while stress-ng keeps one core
# busy, and fails if any run of any test failed. Prints a summary: package,
# runs, tests per run, failed runs, the failing tests, wall time.
#
#   scripts/flake.sh [package ...]    (default: FLAKE_PKGS below)
#
# FLAKE_COUNT  runs per package (default 5)
# FLAKE_WRAP   command to run each `go test` under, e.g. `isolated` for a
#              private network namespace on a machine shared with other runs
# FLAKE_OUT    directory for one log per package (default reports/out/flake-<time>)
# FLAKE_BUSY   cores stress-ng keeps busy (default 1; 0 for none)
set -u
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${FLAKE_COUNT:-5}
BUSY=${FLAKE_BUSY:-1}
WRAP=${FLAKE_WRAP:-}
OUT=${FLAKE_OUT:-reports/out/flake-$(date +%Y%m%d-%H%M%S)}
# The packages whose tests measure time, race real processes or wait on
# clusters: load balancers, the fake node, clusters, task and traffic
# drivers, faults, the runner, the real services, scenarios and checks.
# Not harness/cluster/docker: its containers publish ports in the host's
# network namespace (FLAKE_WRAP=isolated cannot reach them) and it is slow;
# `make test` runs the docker provider. Name it to include it.
FLAKE_PKGS="./harness/lb ./fakes/node ./harness/cluster ./harness/cluster/local ./harness/cluster/external
  ./harness/tasks ./harness/runner ./harness/traffic ./harness/nemesis ./harness/scenario ./harness/checker ./services/..."
if [ $# -gt 0 ]; then pkgs="$*"; else pkgs=$FLAKE_PKGS; fi
# Minutes per package and run; a package's go test is bounded by COUNT times it.
RUN_MINUTES=${FLAKE_RUN_MINUTES:-10}
mkdir -p "$OUT"

# Compile first (outside WRAP: a private network namespace has no module proxy).
pkglist=$($GO list $pkgs) || { echo "flake: go list failed"; exit 1; }
$GO test -count=1 -run '^$' $pkglist >/dev/null || { echo "flake: the tests do not build"; exit 1; }

stress_pid=
stop_stress() {
  if [ -n "$stress_pid" ]; then
    kill "$stress_pid" 2>/dev/null && wait "$stress_pid" 2>/dev/null
    stress_pid=
  fi
}
trap stop_stress EXIT
trap 'stop_stress; exit 130' INT TERM
if [ "$BUSY" -gt 0 ]; then
  command -v stress-ng >/dev/null 2>&1 || ./scripts/deps.sh stress-ng
  if command -v stress-ng >/dev/null 2>&1; then
    # --timeout is a backstop should this script be killed without its trap.
    stress-ng --cpu "$BUSY" --timeout 3h --quiet &
    stress_pid=$!
    echo "flake: stress-ng keeps $BUSY core(s) busy (pid $stress_pid); $(nproc) cores"
  else
    echo "flake: stress-ng not available: running WITHOUT a busy core (a weaker hunt)"
  fi
fi

start=$(date +%s)
status=0
summary=$OUT/summary.txt
printf '%-46s %5s %6s %7s %7s  %s\n' package runs tests failed wall failing-tests > "$summary"
for p in $pkglist; do
  short=${p#github.com/octoha/octoha/}
  log=$OUT/$(echo "$short" | tr / _).log
  t0=$(date +%s)
  $WRAP $GO test -v -count="$COUNT" -p 1 -timeout "$(( RUN_MINUTES * COUNT ))m" "$p" > "$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - t0 ))
  tests=$(grep -c '^=== RUN   [^/]*$' "$log")
  tests=$(( tests / COUNT ))
  failed=$(grep -c '^--- FAIL: ' "$log")
  names=$(grep '^--- FAIL: ' "$log" | awk '{print $3}' | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')
  if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1; names="package: exit $rc (build failure, panic or timeout; see log)"
  fi
  [ "$failed" -gt 0 ] && status=1
  printf '%-46s %5s %6s %7s %6ss  %s\n' "$short" "$COUNT" "$tests" "$failed" "$wall" "$names" | tee -a "$summary"
done
stop_stress
total=$(( $(date +%s) - start ))
echo
cat "$summary"
echo "flake: $(( total / 60 ))m$(( total % 60 ))s; logs in $OUT"
if [ $status -ne 0 ]; then
  echo "flake: FAILED: some test failed in some run (see the failing tests above and their logs)"
else
  echo "flake: every run of every test passed"
fi
exit $status
