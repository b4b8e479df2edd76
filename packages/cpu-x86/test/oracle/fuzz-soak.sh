#!/bin/sh
# Soak run of the fuzz test: many more random streams per mode than CI runs.
#   sh packages/cpu-x86/test/oracle/fuzz-soak.sh [iterations per mode] [seed]
# Defaults: 5000 iterations, a seed from the clock (printed, to reproduce).
set -eu
iterations="${1:-5000}"
seed="${2:-$(date +%s)}"
echo "fuzz soak: $iterations iterations per mode, seed $seed"
cd "$(dirname "$0")/../../../.."
KUMO_FUZZ_ITERATIONS="$iterations" KUMO_FUZZ_SEED="$seed" \
  exec pnpm exec vitest run --project cpu-x86 test/fuzz.test.ts --testTimeout=0
