#!/usr/bin/env bash
# Starts a throwaway single-node Ceph (one monitor, one memstore OSD, no manager, no cephx) and a
# RadosGW on 127.0.0.1:$RGW_PORT, with one S3 user whose keys are fixed. Everything lives in
# $CEPH_DIR (data is in memory); the daemons' PIDs are written to $CEPH_DIR/{mon,osd,rgw}.pid so
# whoever started them can stop exactly those (see radosgw-down.sh). Needs root and the Debian
# packages radosgw ceph-mon ceph-osd ceph-common.
set -euo pipefail
CEPH_DIR=${CEPH_DIR:-/tmp/quayfleet-ceph}
RGW_PORT=${RGW_PORT:-17480}
MON_PORT=${MON_PORT:-16789}
RGW_ACCESS_KEY=${RGW_ACCESS_KEY:?}
RGW_SECRET_KEY=${RGW_SECRET_KEY:?}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-6442450944}

for tool in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common" >&2; exit 3; }
done

# A monitor of an earlier cluster still on the port (a failed attempt being stopped) would answer
# this cluster's commands with 'wrong fsid': wait up to 15 s for the port to be free.
for _ in $(seq 1 150); do
  (exec 3<>"/dev/tcp/127.0.0.1/$MON_PORT") 2>/dev/null || break
  sleep 0.1
done
rm -rf "$CEPH_DIR"
mkdir -p "$CEPH_DIR"/{mon,osd,rgw,run,log}
fsid=$(cat /proc/sys/kernel/random/uuid)
conf="$CEPH_DIR/ceph.conf"
# Only the v1 protocol on a fixed port: a msgr2 address on a non-default port leaves clients hunting.
# tcp_nodelay avoids a ~45 ms delayed-ACK stall on every small response. The short GC timers make
# deleted and aborted data leave the memstore quickly instead of after RGW's default 2 hours.
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
ms_bind_msgr2 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES
run_dir = $CEPH_DIR/run
admin_socket = $CEPH_DIR/run/\$name.asok
log_file = $CEPH_DIR/log/\$name.log
[mon.a]
mon_data = $CEPH_DIR/mon
[osd.0]
osd_data = $CEPH_DIR/osd
[client.rgw.quayfleet]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw_data = $CEPH_DIR/rgw
rgw_gc_obj_min_wait = 10
rgw_gc_processor_period = 10
CONF

c=(-c "$conf")
monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$CEPH_DIR/monmap" >/dev/null
ceph-mon "${c[@]}" --mkfs -i a --monmap "$CEPH_DIR/monmap"
setsid ceph-mon "${c[@]}" -i a -f >"$CEPH_DIR/log/mon.out" 2>&1 </dev/null & echo $! >"$CEPH_DIR/mon.pid"

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(timeout 60 ceph "${c[@]}" osd new "$osd_uuid") || { echo "ceph osd new did not answer within 60 s (monitor not up?); see $CEPH_DIR/log" >&2; exit 124; }
ceph-osd "${c[@]}" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$CEPH_DIR/log/osd-mkfs.out" 2>&1
# The OSD must report up before anything else waits on it. Sometimes it asks the monitor before it
# has the monmap ('wrong fsid' in osd.out, the monitor sees fsid 0) and then never boots; two CI
# runs lost a whole attempt (60 s, then a full restart) to that. Such an OSD is restarted here.
osd_up() { timeout 5 ceph "${c[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; }
for osd_try in 1 2 3; do
  setsid ceph-osd "${c[@]}" -i "$osd_id" -f >"$CEPH_DIR/log/osd.out" 2>&1 </dev/null & echo $! >"$CEPH_DIR/osd.pid"
  for _ in $(seq 1 40); do
    osd_up && break 2
    grep -q "wrong fsid" "$CEPH_DIR/log/osd.out" 2>/dev/null && break
    sleep 0.5
  done
  echo "osd.$osd_id did not boot (try $osd_try); restarting it" >&2
  cp "$CEPH_DIR/log/osd.out" "$CEPH_DIR/log/osd.out.$osd_try" 2>/dev/null || true
  osd_pid=$(cat "$CEPH_DIR/osd.pid")
  kill "$osd_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$osd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$osd_pid" 2>/dev/null || true
done
setsid radosgw "${c[@]}" -n client.rgw.quayfleet -f >"$CEPH_DIR/log/rgw.out" 2>&1 </dev/null & echo $! >"$CEPH_DIR/rgw.pid"

for _ in $(seq 1 900); do
  (exec 3<>"/dev/tcp/127.0.0.1/$RGW_PORT") 2>/dev/null && break
  kill -0 "$(cat "$CEPH_DIR/rgw.pid")" 2>/dev/null || { echo "radosgw exited; see $CEPH_DIR/log" >&2; exit 1; }
  sleep 0.1
done
timeout 60 radosgw-admin "${c[@]}" user create --uid=quayfleet --display-name=quayfleet \
  --access-key="$RGW_ACCESS_KEY" --secret="$RGW_SECRET_KEY" >/dev/null \
  || { echo "radosgw-admin user create did not finish within 60 s; see $CEPH_DIR/log" >&2; exit 124; }
echo "radosgw ready on http://127.0.0.1:$RGW_PORT (data in $CEPH_DIR)"
