#!/usr/bin/env bash
# Runs Debian's idlc (package cyclonedds-tools, installed by ./bazelw) with the
# given arguments; a clear message instead of "command not found" if absent.
set -euo pipefail
if [[ ! -x /usr/bin/idlc ]]; then
  echo "idlc: /usr/bin/idlc missing; install cyclonedds-tools (./bazelw does)" >&2
  exit 1
fi
exec /usr/bin/idlc "$@"
