#!/bin/sh
# Starts the Debian-packaged Prometheus for pytest-goleak on the ports the plugin picked.
# Usage: run-prometheus.sh ADDR DATA_DIR [extra prometheus flags...]
# It writes a config that scrapes Prometheus itself every second (so queries have
# data, and the scrape loop is live background work inside the server), then
# exec's the real binary: the PID the plugin watches is Prometheus itself.
set -eu
addr=$1; data=$2; shift 2
cat > "$data/prometheus.yml" <<YML
global:
  scrape_interval: ${SOAK_SCRAPE_INTERVAL:-1s}
  evaluation_interval: 1s
rule_files:
  - $data/rules.yml
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['$addr']
        labels: {soak: 'yes'}
YML
cat > "$data/rules.yml" <<YML
groups:
  - name: soak
    rules:
      - record: soak:up:sum
        expr: sum(up)
      - alert: SoakAlwaysFiring
        expr: vector(1)
YML
exec "${PROMETHEUS:-/usr/bin/prometheus}" \
  --config.file="$data/prometheus.yml" \
  --storage.tsdb.path="$data/tsdb" \
  --web.listen-address="$addr" \
  --web.enable-lifecycle --web.enable-admin-api \
  "$@"
