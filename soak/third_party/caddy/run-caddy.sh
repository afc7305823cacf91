#!/bin/sh
# Starts the Debian-packaged Caddy for pytest-goleak on the ports the plugin picked.
# Usage: run-caddy.sh ADMIN_ADDR DATA_DIR SITE_PORT UPSTREAM_PORT
# Writes a JSON config with: the admin API (which serves /debug/pprof/) on ADMIN_ADDR;
# a site on 127.0.0.1:SITE_PORT (static responses, a file server with gzip, a reverse
# proxy); an upstream on 127.0.0.1:UPSTREAM_PORT for that proxy. Then exec's caddy, so
# the PID the plugin watches is Caddy itself. Everything stays on loopback, plain HTTP.
set -eu
admin=$1; data=$2; site=$3; upstream=$4
mkdir -p "$data/www/assets"
printf '<!doctype html><title>soak</title><h1>hello from caddy</h1>\n' > "$data/www/index.html"
head -c 200000 /dev/zero | tr '\0' 'a' > "$data/www/assets/big.txt"
printf '{"ok": true}\n' > "$data/www/assets/data.json"
export HOME="$data" XDG_CONFIG_HOME="$data/config" XDG_DATA_HOME="$data/data"
cat > "$data/caddy.json" <<JSON
{
  "admin": {"listen": "$admin", "config": {"persist": false}},
  "storage": {"module": "file_system", "root": "$data/storage"},
  "apps": {
    "http": {
      "servers": {
        "site": {
          "listen": ["127.0.0.1:$site"],
          "automatic_https": {"disable": true},
          "routes": [
            {"match": [{"path": ["/healthz"]}],
             "handle": [{"handler": "static_response", "status_code": 200, "body": "ok"}]},
            {"match": [{"path": ["/api/*"]}],
             "handle": [{"handler": "headers", "request": {"set": {"X-Soak": ["1"]}}},
                        {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:$upstream"}]}]},
            {"handle": [{"handler": "encode", "encodings": {"gzip": {}}, "minimum_length": 256},
                        {"handler": "file_server", "root": "$data/www"}]}
          ]
        },
        "upstream": {
          "listen": ["127.0.0.1:$upstream"],
          "automatic_https": {"disable": true},
          "routes": [
            {"handle": [{"handler": "static_response", "status_code": 200,
                         "headers": {"Content-Type": ["application/json"]},
                         "body": "{\"path\": \"{http.request.uri.path}\", \"soak\": \"{http.request.header.X-Soak}\"}"}]}
          ]
        }
      }
    }
  }
}
JSON
exec "${CADDY:-/usr/bin/caddy}" run --config "$data/caddy.json"
