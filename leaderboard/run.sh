#!/usr/bin/env bash
# The leaderboard pipeline, one `fubench` command per step. The CI workflow
# (.github/workflows/leaderboard.yml) calls exactly these steps, so everything it does
# can be run and debugged locally:
#
#   leaderboard/run.sh all          # every offline scenario, every built-in method, the ε
#                                   # of $QUALITY, then plots, leaderboard/README.md, site
#                                   # (hours on 2 CPU cores)
#   leaderboard/run.sh list [--json]  # the scenario files whose data load without network
#   leaderboard/run.sh run FILE     # one scenario -> $OUT/results/<scenario>/seed_<n>.json
#   leaderboard/run.sh quality FILE # its forgetting-quality ε (K=$REPLICAS replicas, seed 0)
#                                   # -> $OUT/results/<scenario>/forget_quality_seed_0.json
#   leaderboard/run.sh plots        # trade-off, budget, attention and cost plots -> $OUT/plots/
#   leaderboard/run.sh board        # $OUT/README.md from $OUT/results (and existing plots)
#   leaderboard/run.sh check        # exit 1 when $OUT/README.md is stale against the results
#   leaderboard/run.sh html         # the same board as a static site -> $SITE/index.html
#                                   # (opens from file://; not committed: CI rebuilds it)
#   leaderboard/run.sh submissions  # every leaderboard/submissions/*.yaml: a community method
#                                   # installed on its own, checked by the kit, run on the
#                                   # scenarios it names; its rows added, marked (or nothing)
#   leaderboard/run.sh verify [ARGS]  # re-run stored rows from an empty cache and compare
#                                   # (fubench verify $OUT/results ARGS)
#
# Settings (environment): OUT (default leaderboard), SITE (default $OUT/site), SEEDS and
# TUNING_SEEDS (default: the scenario file's seeds and tuning_seeds), JOBS (tasks, or ε
# replicas, at once; default one per core), THREADS (torch threads per task, default 1),
# DEVICE (cpu: the committed leaderboard is a CPU run), FUBENCH (the fubench executable),
# QUALITY (the scenario files whose ε `all` computes; default backdoor_mnist), REPLICAS
# (K, default 32). Only the built-in plugins are loaded (FUBENCH_DISABLE_PLUGIN_AUTOLOAD=1),
# so "every method" means every built-in method. A run resumes: rows already computed under
# the same configuration are kept, models come from the cache (~/.cache/fubench/models);
# rows the scenario file no longer lists (an earlier sweep) are removed (--prune).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-leaderboard}
SITE=${SITE:-$OUT/site}
SEEDS=${SEEDS:-}
TUNING_SEEDS=${TUNING_SEEDS:-}
DEVICE=${DEVICE:-cpu}
FUBENCH=${FUBENCH:-fubench}
QUALITY=${QUALITY:-"scenarios/backdoor_mnist.yaml"}
REPLICAS=${REPLICAS:-32}
export FUBENCH_DISABLE_PLUGIN_AUTOLOAD=${FUBENCH_DISABLE_PLUGIN_AUTOLOAD:-1}
#: scenario kinds whose attention maps mean something (Ferrari, Fig. 5)
ATTENTION_KINDS="backdoor|bias"

list() { "$FUBENCH" leaderboard --list-offline scenarios/*.yaml "$@"; }

submissions() {
    local file
    for file in leaderboard/submissions/*.yaml; do
        [ -e "$file" ] || continue
        "$FUBENCH" submit "$file" --results "$OUT/results"
    done
}

verify() { "$FUBENCH" verify "$OUT/results" "$@"; }

methods() { "$FUBENCH" list methods | awk '/^  [^ ]/ {print $1}' | paste -sd, -; }

run_one() {
    local code=0
    # the evaluation seeds the table reports, then the tuning seeds a swept method's
    # point is chosen on (never on the reported ones); seeds run as parallel jobs
    "$FUBENCH" run "$1" --methods "$(methods)" ${SEEDS:+--seeds "$SEEDS"} --device "$DEVICE" \
        ${JOBS:+--jobs "$JOBS"} ${THREADS:+--threads "$THREADS"} --out "$OUT/results" --prune -q \
        || code=$?
    # 1 = a method failed on some row: that is a result (the leaderboard lists it)
    if [ "$code" -gt 1 ]; then return "$code"; fi
    if grep -q "^tuning_seeds:" "$1"; then
        code=0
        "$FUBENCH" run "$1" --tuning --methods "$(methods)" \
            ${TUNING_SEEDS:+--seeds "$TUNING_SEEDS"} --device "$DEVICE" ${JOBS:+--jobs "$JOBS"} \
            ${THREADS:+--threads "$THREADS"} --out "$OUT/results" --prune -q || code=$?
        if [ "$code" -gt 1 ]; then return "$code"; fi
    fi
}

quality_one() {
    local code=0
    # the K replicas run as JOBS worker processes (the same ε as one after the other)
    "$FUBENCH" quality "$1" --methods "$(methods)" --replicas "$REPLICAS" --seeds 0 \
        --device "$DEVICE" ${JOBS:+--jobs "$JOBS"} ${THREADS:+--threads "$THREADS"} \
        --out "$OUT/results" -q || code=$?
    if [ "$code" -gt 1 ]; then return "$code"; fi
}

plots() {
    mkdir -p "$OUT/plots"
    "$FUBENCH" plot cost "$OUT/results" -o "$OUT/plots/cost.png"
    for dir in "$OUT"/results/*/; do
        local name
        name=$(basename "$dir")
        "$FUBENCH" plot tradeoff "$dir" -o "$OUT/plots/${name}_tradeoff.png" \
            || echo "run.sh: no trade-off plot for $name (no swept method)" >&2
        "$FUBENCH" plot budget "$dir" -o "$OUT/plots/${name}_budget.png" \
            || echo "run.sh: no budget plot for $name (no baseline swept over work)" >&2
    done
    for file in $(list); do
        # grep reads all of it: with -q it would leave early, validate would exit 141 and,
        # under pipefail, the scenario would be skipped without a word
        if "$FUBENCH" validate "$file" | grep -E "ok \((${ATTENTION_KINDS}) on" > /dev/null; then
            "$FUBENCH" plot attention "$file" --seed 0 --device "$DEVICE" \
                --methods "$(methods)" --results "$OUT/results" -o "$OUT/plots/{scenario}_attention.png" \
                || echo "run.sh: no attention map for $file (not run yet?)" >&2
        fi
    done
}

board() { "$FUBENCH" leaderboard "$OUT/results" -o "$OUT/README.md"; }

check() { "$FUBENCH" leaderboard "$OUT/results" -o "$OUT/README.md" --check; }

html() { "$FUBENCH" leaderboard "$OUT/results" --html "$SITE"; }

case "${1:-}" in
    list) shift; list "$@" ;;
    methods) methods ;;
    run) [ $# -eq 2 ] || { echo "usage: $0 run SCENARIO.yaml" >&2; exit 2; }; run_one "$2" ;;
    quality) [ $# -eq 2 ] || { echo "usage: $0 quality SCENARIO.yaml" >&2; exit 2; }
        quality_one "$2" ;;
    plots) plots ;;
    board) board ;;
    check) check ;;
    html) html ;;
    submissions) submissions ;;
    verify) shift; verify "$@" ;;
    all) for file in $(list); do run_one "$file"; done
        for file in $QUALITY; do quality_one "$file"; done; submissions; plots; board; html ;;
    *) sed -n '2,31p' "$0" >&2; exit 2 ;;
esac
