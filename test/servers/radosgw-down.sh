#!/usr/bin/env bash
# Stops the daemons radosgw-up.sh started (by their recorded PIDs: rgw, then osd, then mon) and
# removes their directory.
CEPH_DIR=${CEPH_DIR:-/tmp/quayfleet-ceph}
for name in rgw osd mon; do
  pid=$(cat "$CEPH_DIR/$name.pid" 2>/dev/null) || continue
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
rm -rf "$CEPH_DIR"
