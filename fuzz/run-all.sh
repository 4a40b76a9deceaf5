#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz_targets/ in one `cargo fuzz build`, then runs each for
# SECONDS (default 30), or only the TARGETs named: `./run-all.sh SECONDS [TARGET...]`.
# Needs a nightly toolchain (`cargo +nightly`) and cargo-fuzz (installed from crates.io when
# missing). Seeds in seeds/<target>/ are read; new inputs go to corpus/<target>/ (ignored by git).
# Exits non-zero on the first crash; libFuzzer writes the input under artifacts/<target>/.
# CI runs `bash fuzz/run-all.sh 20`: about 3-4 min of build on 2 cores plus 20 s per target.
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

targets=("${@:2}")
if [ "${#targets[@]}" -eq 0 ]; then
    for file in fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi
for target in "${targets[@]}"; do
    if ! [ -f "fuzz_targets/$target.rs" ]; then
        echo "fuzz: no target $target in fuzz_targets/" >&2
        exit 2
    fi
done
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets in fuzz_targets/" >&2
    exit 1
fi

# One build for every target: cargo-fuzz's flags are the same for all, so each dependency is
# compiled once; the runs below then start the built binaries without going through cargo.
started=$SECONDS
cargo +nightly fuzz build
echo "fuzz: built in $((SECONDS - started))s" >&2
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="target/$triple/release"
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    dirs=("$corpus")
    if [ -d "seeds/$target" ]; then
        dirs+=("seeds/$target")
    fi
    echo "fuzz: $target for ${seconds}s" >&2
    # -timeout: an input running 10 s counts as a hang (a crash).
    "$bin_dir/$target" "${dirs[@]}" -max_total_time="$seconds" -timeout=10 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1
done
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a crash" >&2
