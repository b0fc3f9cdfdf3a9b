#!/bin/sh
# The test suite as on a fresh machine without Debian's libpam-wrapper and pamtester: run by
# test/run_both.mjs as root inside `unshare --mount --propagation private`, so the bind mounts
# below hide the packages from this process tree only. The suite must end with 0 failed (the
# tests that need them skip). Arguments: test files, as for `npm test`.
set -eu
cd "$(dirname "$0")/.."
empty=$(mktemp -d)
trap 'rmdir "$empty"' EXIT
for dir in /usr/lib/*/pam_wrapper; do
  [ -d "$dir" ] && mount --bind "$empty" "$dir"
done
for file in /usr/lib/*/libpam_wrapper.so* /usr/bin/pamtester; do
  # /dev/null: no longer a library, and not executable.
  [ -e "$file" ] && mount --bind /dev/null "$file"
done
SEED_PAM_NO_INSTALL=1 SEED_PAM_FRESH=0 node test/run_both.mjs "$@"
