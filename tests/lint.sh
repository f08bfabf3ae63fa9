#!/usr/bin/env bash
# The house rules CI checks before the tests: formatting (rustfmt.toml),
# clippy with every warning an error (the workspace lints in Cargo.toml),
# unused dependencies (cargo-machete), and the crate layering: no stage crate depends on another stage crate (what
# stages share lives in the shared crates).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check || { echo "lint.sh: run 'cargo fmt --all'" >&2; exit 1; }
cargo clippy --workspace --all-targets --locked -- -D warnings

# No dependency that nothing uses.
cargo machete --version >/dev/null 2>&1 || cargo install --locked cargo-machete --version 0.9.2
cargo machete

# Stages: the crates of the pipeline's nodes. Shared crates (msgs, runtime,
# bag, image, look, launch) may be used by any stage; the drivers (s2r-cli,
# s2r-bench, the sim2real package) may use everything.
stages=(s2r-demo s2r-sim s2r-transfer s2r-curator s2r-tokenizer s2r-perception s2r-policy s2r-reason s2r-world s2r-multiview s2r-safety)
bad=0
for s in "${stages[@]}"; do
  deps="$(cargo tree --locked -p "$s" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)"
  for other in "${stages[@]}"; do
    if [ "$other" != "$s" ] && grep -qx "$other" <<<"$deps"; then
      echo "lint.sh: stage $s depends on stage $other; move what they share into a shared crate" >&2
      bad=1
    fi
  done
done
exit $bad
