#!/usr/bin/env bash
# Builds the task crates under tasks/ to WASI components at target/tasks/NAME.wasm.
#
#   tasks/build.sh            build every task (installing the Debian toolchain first if needed)
#   tasks/build.sh NAME...    build only these tasks (NAME is the crate's directory)
#   tasks/build.sh --setup    only make sure a toolchain that can build tasks is installed
#   tasks/build.sh --component CRATE_DIR OUT.wasm
#                             build one other guest crate (a workspace of its own) to OUT.wasm
#
# Toolchain, in order of preference:
#   1. rustup with the wasm32-wasip2 target installed: the ordinary `cargo build`.
#   2. Debian's rustc-web/cargo-web packages, which ship std sources and wasm-component-ld:
#      std is built for wasm32-wasip2 with -Zbuild-std (cached in target/wasm). Installed with
#      apt-get when this runs as root on Debian.
#   3. Otherwise it stops and says what to install.
#
# Environment: TASKHOST_TASKS_OUT overrides the output directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${TASKHOST_TASKS_OUT:-$root/target/tasks}
wasm_target_dir=$root/target/wasm
debian_packages=(rustc-web cargo-web rust-web-src wasi-libc lld)
debian_tools=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin
debian_wasi_libc=/usr/lib/wasm32-wasi

log() { printf 'tasks/build.sh: %s\n' "$*" >&2; }

# This script may run inside another cargo build (the tests' build script): drop what that
# build set for itself so that none of it leaks into the guest build.
for var in $(compgen -e); do
  case $var in
    CARGO_HOME) ;;
    CARGO | CARGO_* | RUSTC | RUSTC_* | RUSTFLAGS | RUSTDOC | RUSTDOCFLAGS | DEP_* | OUT_DIR | \
      TARGET | HOST | PROFILE | OPT_LEVEL | DEBUG | NUM_JOBS) unset "$var" ;;
  esac
done

have_rustup_target() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2
}

have_debian_toolchain() {
  [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] &&
    [ -x "$debian_tools/wasm-component-ld" ] &&
    [ -f "$debian_wasi_libc/libc.a" ] &&
    [ -d /usr/lib/rustlib/src/rust/library ]
}

install_debian_toolchain() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "no toolchain can build wasm32-wasip2 components. Install one of:"
    log "  rustup target add wasm32-wasip2"
    log "  apt-get install ${debian_packages[*]}    (Debian 12 or later, as root)"
    exit 1
  fi
  log "installing Debian packages: ${debian_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${debian_packages[@]}" >&2
}

ensure_toolchain() {
  if have_rustup_target; then
    toolchain=rustup
  else
    have_debian_toolchain || install_debian_toolchain
    toolchain=debian
  fi
}

# Sets `tasks` to the tasks to build: the names given, each checked, or every crate under
# tasks/; and `packages` to the cargo arguments that select them.
select_tasks() {
  tasks=()
  packages=()
  local name dir
  if [ $# -gt 0 ]; then
    for name in "$@"; do
      if [[ ! $name =~ ^[A-Za-z0-9_-]+$ ]] || [ ! -f "$root/tasks/$name/Cargo.toml" ]; then
        log "no task named '$name': there is no $root/tasks/$name/Cargo.toml"
        exit 1
      fi
      tasks+=("$name")
      packages+=(--package "$name")
    done
  else
    for dir in "$root"/tasks/*/; do
      if [ -f "$dir/Cargo.toml" ]; then tasks+=("$(basename "$dir")"); fi
    done
  fi
}

# Builds the crates of the workspace at manifest $1 (those in "${packages[@]}", every one if
# none) for wasm32-wasip2, into $wasm_target_dir.
cargo_wasm() {
  local manifest=$1
  # Not --locked: a newly added task crate must be able to join tasks/Cargo.lock.
  local args=(build --release --target wasm32-wasip2 --manifest-path "$manifest"
    --target-dir "$wasm_target_dir" "${packages[@]}")
  if [ "$toolchain" = rustup ]; then
    cargo "${args[@]}"
  else
    PATH=$debian_tools:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
      RUSTFLAGS="-C link-self-contained=no -L $debian_wasi_libc" \
      /usr/bin/cargo "${args[@]}" -Zbuild-std=std,panic_abort
  fi
}

build() {
  log "building tasks with the $toolchain toolchain"
  cargo_wasm "$root/tasks/Cargo.toml"

  mkdir -p "$out"
  local name
  for name in "${tasks[@]}"; do
    # Cargo names a cdylib after the crate with '-' turned into '_'; the task keeps its name.
    cp "$wasm_target_dir/wasm32-wasip2/release/${name//-/_}.wasm" "$out/$name.wasm.tmp"
    mv "$out/$name.wasm.tmp" "$out/$name.wasm"
    log "$(printf '%-12s %8d bytes  %s' "$name" "$(stat -c %s "$out/$name.wasm")" "$out/$name.wasm")"
  done
}

if [ "${1:-}" = --setup ]; then
  ensure_toolchain
elif [ "${1:-}" = --component ]; then
  # --component CRATE_DIR OUT: builds the one crate in CRATE_DIR (a workspace of its own, such
  # as a benchmark's peer component) with the same toolchain, and copies it to OUT.
  [ $# -eq 3 ] || { log "usage: tasks/build.sh --component CRATE_DIR OUT.wasm"; exit 1; }
  ensure_toolchain
  packages=()
  crate=$(cd "$2" && pwd)
  name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$crate/Cargo.toml" | head -1)
  log "building $name with the $toolchain toolchain"
  cargo_wasm "$crate/Cargo.toml"
  cp "$wasm_target_dir/wasm32-wasip2/release/${name//-/_}.wasm" "$3"
else
  select_tasks "$@"
  ensure_toolchain
  build
fi
