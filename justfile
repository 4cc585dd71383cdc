# Recipes for working on berth. `just --list` shows them.
# Debian bookworm does not package just: `cargo install just` installs it.
# Without it, run a recipe's lines by hand: each is a plain shell command.

# Build the release binary.
build:
    cargo build --release

# Run the whole test suite (as CI does, after fmt and clippy).
test:
    cargo test --no-fail-fast

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Everything CI runs.
ci:
    bash .ci/run

# Benchmarks: berth's medians beside its peers', from the same run.
bench:
    for b in bench/*.sh; do bash "$b"; done

# The main job on the demo project: build it and bring it up (detached).
demo:
    cargo run --release -- up -d -f manifests/demo/berth.toml
