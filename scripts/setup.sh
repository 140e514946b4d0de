#!/usr/bin/env bash
# Installs everything the project needs, idempotently: npm packages, the guest images, and for the
# tests and benchmarks Debian's Chromium and QEMU. Run by `npm start`, `npm test` and `npm run bench`.
#   scripts/setup.sh demo    npm packages + guest images (what the demo needs)
#   scripts/setup.sh test    + Chromium, QEMU, build tools for the test suite
#   scripts/setup.sh bench   same as test
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"
say() { printf '[setup] %s\n' "$*" >&2; }

# Node.js: Vite 8 needs 20.19 or newer.
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error(`[setup] Node.js ${process.versions.node} is too old: 20.19 or newer is needed`); process.exit(1) }'

# npm packages, exactly as locked; reinstalled when the lock file changes.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.setup-lock-stamp 2>/dev/null; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.setup-lock-stamp
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; fi
fi
apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    say "apt-get is not available; please install these Debian packages by hand: ${missing[*]}"
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    # A mirror mid-sync can fail one index; the rest is still usable.
    $SUDO apt-get update -qq || say "apt-get update reported errors; trying the install anyway"
    apt_updated=1
  fi
  say "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# gcc/binutils build our firmware and the test guests.
apt_install gcc binutils xz-utils
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  # Chromium for the browser tests (playwright-core drives it; it never downloads a browser),
  # QEMU as the reference the self-test guest and the benchmarks compare against,
  # gcc/binutils for the freestanding test guests, ACPICA's iasl to check our AML (acpica-tools).
  apt_install chromium qemu-system-x86 gcc binutils libc6-dev acpica-tools
fi

# The default Linux guest (Debian's i386 kernel, busybox initramfs, SeaBIOS) in .cache/guest.
npx tsx src/guests/images.ts
# Kernel symbols for the live view's page map (Debian ships only a stub System.map): from the
# kernel image's own kallsyms and export tables.
npx tsx src/guests/symbols/extract.ts >/dev/null

# The instrumented v86 engine (.cache/v86) and our firmware for N CPUs (guests/firmware/build).
npx tsx src/engine/instrument/cli.ts >/dev/null
npx tsx -e 'import("./src/runtime/nodejs/firmware-build.ts").then((m) => m.buildFirmware())'
say "ready ($mode)"
