# Sourced by the bench scripts: builds the server as it ships and the load
# generator, and sets SERVER_BIN, BASELINE_BIN, LOADGEN_BIN, BENCH_BINARY and
# (when it builds) BENCH_COMMIT.
#
# PROFILE=dist (the default) builds what the container image holds
# (deploy/docker/Dockerfile): the `dist` profile (fat LTO, one codegen unit)
# with glibc linked statically. Measured here, that binary serves about 20 %
# more modern-get calls per second than the `release` profile's, so a bench
# of `release` would describe a slower server than the one users run.
# PROFILE=release builds the quicker profile (tests and development use it).
#
# build_binaries [PACKAGE...]: the server (mcpship-cli) and any other
# workspace packages (bare-rmcp), then the load generator.

PROFILE=${PROFILE:-dist}
LOADGEN_TARGET=$ROOT/target/loadgen
LOADGEN_BIN=$LOADGEN_TARGET/release/mcpship-loadgen
case $PROFILE in
    dist)
        BENCH_TRIPLE="$(uname -m)-unknown-linux-gnu"
        BENCH_BIN_DIR=$ROOT/target/$BENCH_TRIPLE/dist
        ;;
    release)
        BENCH_BIN_DIR=$ROOT/target/release
        ;;
    *)
        printf 'bench: PROFILE must be dist or release, not %s\n' "$PROFILE" >&2
        exit 1
        ;;
esac
SERVER_BIN=$BENCH_BIN_DIR/mcpship
BASELINE_BIN=$BENCH_BIN_DIR/bare-rmcp
# How the reports name the binary they measured.
BENCH_BINARY="\`${SERVER_BIN#"$ROOT"/}\` (the $PROFILE profile; dist is what the container image holds)"

build_binaries() {
    local packages=(-p mcpship-cli) p
    for p in "$@"; do packages+=(-p "$p"); done
    # The commit the binaries are built from, taken now: a long benchmark
    # outlives edits made while it runs, which are not in what it measures.
    # BENCHMARKS.md, which the benchmarks write, does not count as a change.
    BENCH_COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo "none (no commits yet)")
    if [[ $BENCH_COMMIT != none* ]] \
        && [[ -n $(git -C "$ROOT" status --porcelain -- . ':!BENCHMARKS.md' 2>/dev/null) ]]; then
        BENCH_COMMIT="$BENCH_COMMIT (with uncommitted changes)"
    fi
    printf 'bench: building %s (profile %s) and the load generator\n' "${packages[*]}" "$PROFILE" >&2
    if [[ $PROFILE == dist ]]; then
        # As the Dockerfile builds it: the static flag for the target only,
        # so build scripts and proc-macros build as usual.
        local var
        var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$BENCH_TRIPLE")_RUSTFLAGS"
        (cd "$ROOT" && env "$var=-C target-feature=+crt-static" \
            cargo build --locked --profile dist --target "$BENCH_TRIPLE" "${packages[@]}") >&2
    else
        (cd "$ROOT" && cargo build --release --locked "${packages[@]}") >&2
    fi
    (cd "$ROOT/bench/loadgen" && CARGO_TARGET_DIR=$LOADGEN_TARGET cargo build --release --locked) >&2
}
