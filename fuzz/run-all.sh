#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz_targets/ and runs each for SECONDS (default 30).
# Needs a nightly toolchain (`cargo +nightly`) and cargo-fuzz (installed from crates.io when
# missing). Seeds in seeds/<target>/ are read; new inputs go to corpus/<target>/ (ignored by git).
# Exits non-zero on the first crash; libFuzzer writes the input under artifacts/<target>/.
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
cd "$(dirname "$0")"
# Sanitizer builds share nothing with the main workspace's target directory.
unset CARGO_TARGET_DIR

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (cargo +nightly); cannot fuzz" >&2
    exit 1
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

targets=()
for file in fuzz_targets/*.rs; do
    targets+=("$(basename "$file" .rs)")
done
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets in fuzz_targets/" >&2
    exit 1
fi

cargo +nightly fuzz build
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    if [ -d "seeds/$target" ]; then
        dirs+=("seeds/$target")
    fi
    echo "fuzz: $target for ${seconds}s" >&2
    cargo +nightly fuzz run "$target" "${dirs[@]}" -- -max_total_time="$seconds" -timeout=10
done
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a crash" >&2
