#!/usr/bin/env bats
# The Prometheus endpoint (lendfs --metrics-listen, [cluster]
# metrics_listen; lendfs/httpd.h), with the real programs: curl for HTTP,
# promtool (Debian package prometheus) on the text and on the example
# alert rules of docs/ADMIN.md, and a real Prometheus server started by
# the test that scrapes the endpoint and answers a query of
# lendfs_active_lends.  No skip: contrib/deps.sh installs prometheus
# and curl.

load helpers

PROMCHECK="$ROOT/tests/tools/promcheck.py"
RULES="$ROOT/contrib/prometheus/lendfs-alerts.yml"
PROM_WAIT_TENTHS=300	# 30 s for Prometheus to start, scrape, answer

setup() {
	TMP=
	PROM_PID=
	HOLD_PID=
}

teardown() {
	if [ -n "${PROM_PID:-}" ]; then
		kill -TERM "$PROM_PID" 2>/dev/null || true
		wait "$PROM_PID" 2>/dev/null || true
	fi
	[ -n "${HOLD_PID:-}" ] && { kill "$HOLD_PID" 2>/dev/null || true; wait "$HOLD_PID" 2>/dev/null || true; }
	lendfs_unmount
}

# free_port: a TCP port nothing listens on right now, on 127.0.0.1.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# mount_endpoint [ADDR]: lendfs on $TMP/mnt with --metrics-listen
# ADDR:PORT (default 127.0.0.1); sets PORT and URL.
mount_endpoint() {
	local addr="${1:-127.0.0.1}" host="${2:-127.0.0.1}"
	PORT="$(free_port)"
	URL="http://$host:$PORT/metrics"
	lendfs_mount "$DEMO" --metrics-listen "$addr:$PORT"
}

# start_fails ARGS...: lendfs with ARGS exits (does not mount); its
# status in status, stderr in output.
start_fails() {
	local dir
	dir="$(mktemp -d)"
	mkdir "$dir/mnt"
	run timeout 20 "$LENDFS" -f --state none --run-dir "$dir/run" "$@" "$dir/mnt"
	mountpoint -q "$dir/mnt" && fusermount3 -u "$dir/mnt"
	rm -rf "$dir"
}

# series FILE: the metric names with their label sets, one a line
# (values dropped: they may change between two reads).
series() {
	python3 "$PROMCHECK" --prefix lendfs_ --print "$1" | awk '{ print $1 }'
}

@test "GET /metrics serves the text of the metrics file, as Prometheus text 0.0.4" {
	mount_endpoint
	lend $GPU nodeB
	curl -sS -D "$TMP/headers" -o "$TMP/endpoint.txt" "$URL"
	cat "$MNT/metrics" >"$TMP/file.txt"
	run grep -i '^HTTP/1.1 200' "$TMP/headers"
	assert_success
	run grep -i '^Content-Type:' "$TMP/headers"
	assert_output --regexp '^Content-Type: text/plain; version=0\.0\.4; charset=utf-8.?$'
	# the same families, series and label sets, in the same order
	series "$TMP/endpoint.txt" >"$TMP/endpoint.series"
	series "$TMP/file.txt" >"$TMP/file.series"
	run diff "$TMP/file.series" "$TMP/endpoint.series"
	assert_success
	# and the same text: reads are not counted, and nothing was lent
	# or returned between the two reads
	run diff "$TMP/file.txt" "$TMP/endpoint.txt"
	assert_success
	run grep -x 'lendfs_active_lends 1' "$TMP/endpoint.txt"
	assert_success
	# HEAD: the headers without a body
	run curl -sS -I "$URL"
	assert_output --partial "200 OK"
}

@test "promtool check metrics passes on the file and on the endpoint" {
	mount_endpoint
	lend $GPU nodeB
	assert_lend_fails $GPU nodeC EBUSY "Device or resource busy"
	run promtool check metrics <"$MNT/metrics"
	assert_success
	curl -sS -f -o "$TMP/endpoint.txt" "$URL"
	run promtool check metrics <"$TMP/endpoint.txt"
	assert_success
	run grep -c '^lendfs_request_failures_total{errno="EBUSY"} 1$' "$TMP/endpoint.txt"
	assert_output 1
}

@test "other paths are 404, other methods 405, a huge URL 414; the daemon serves on" {
	mount_endpoint
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/"
	assert_output 404
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics/x"
	assert_output 404
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metricsx"
	assert_output 404
	run curl -sS -D - -o /dev/null -X POST --data-binary 'lendfs_active_lends 9' "$URL"
	assert_line --regexp '^HTTP/1.1 405'
	assert_line --regexp '^Allow: GET, HEAD.?$'
	for m in PUT DELETE OPTIONS PATCH; do
		run curl -sS -o /dev/null -w '%{http_code}' -X "$m" "$URL"
		assert_output 405
	done
	# a 100,000-byte URL: beyond the connection's memory (httpd.h)
	local long
	long="$(head -c 100000 /dev/zero | tr '\0' a)"
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$long"
	assert_output 414
	# a POST with a 1 MB body, and garbage instead of HTTP
	head -c 1000000 /dev/urandom >"$TMP/body"
	run curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary "@$TMP/body" "$URL"
	assert_output 405
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x00\xff GARBAGE \r\n\r\n" * 100)
s.settimeout(10)
try:
    s.recv(4096)
except OSError:
    pass
s.close()' "$PORT"
	# still alive, still serving both the endpoint and the mount
	kill -0 "$LENDFS_PID"
	run curl -sS -o /dev/null -w '%{http_code}' "$URL"
	assert_output 200
	lend $GPU nodeB
	run curl -sS "$URL"
	assert_line 'lendfs_active_lends 1'
}

@test "[v6]:PORT and localhost:PORT bind where told; the option wins over [cluster] metrics_listen" {
	mount_endpoint '[::1]' '[::1]'
	run curl -sS -o /dev/null -w '%{http_code}' "$URL"
	assert_output 200
	# bound to ::1 only: not on 127.0.0.1
	run curl -sS -o /dev/null "http://127.0.0.1:$PORT/metrics"
	assert_failure
	lendfs_unmount
	mount_endpoint localhost 127.0.0.1
	run curl -sS -o /dev/null -w '%{http_code}' "$URL"
	assert_output 200
	lendfs_unmount

	# the config's address, then the option over it
	local dir conf cport oport
	dir="$(mktemp -d)"
	cport="$(free_port)"
	conf="$dir/metrics.ini"
	sed "s/^\[cluster\]$/[cluster]\nmetrics_listen = 127.0.0.1:$cport/" "$DEMO" >"$conf"
	grep -q "^metrics_listen = 127.0.0.1:$cport$" "$conf"
	lendfs_mount "$conf"
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$cport/metrics"
	assert_output 200
	lendfs_unmount
	oport="$(free_port)"
	lendfs_mount "$conf" --metrics-listen "127.0.0.1:$oport"
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$oport/metrics"
	assert_output 200
	run curl -sS -o /dev/null "http://127.0.0.1:$cport/metrics"
	assert_failure
	rm -rf "$dir"
}

@test "off by default: no listening socket without the option" {
	# ss names the daemon's listening socket when there is one...
	mount_endpoint
	run ss -Hltnp
	assert_output --partial "127.0.0.1:$PORT "
	assert_output --partial "pid=$LENDFS_PID,"
	lendfs_unmount
	# ... and there is none without --metrics-listen
	lendfs_mount
	run ss -Hltnp
	refute_output --partial "pid=$LENDFS_PID,"
}

@test "a bad address, a port out of range or in use is a start-up error with the reason" {
	start_fails --metrics-listen 127.0.0.1
	assert_equal "$status" 2
	assert_output --partial "--metrics-listen: '127.0.0.1' has no port"
	start_fails --metrics-listen 300.1.2.3:9100
	assert_equal "$status" 2
	assert_output --partial "'300.1.2.3' is not an IPv4 address"
	start_fails --metrics-listen example.org:9100
	assert_equal "$status" 2
	assert_output --partial "'example.org' is not an IPv4 address"
	start_fails --metrics-listen '[::1:9100'
	assert_equal "$status" 2
	assert_output --partial "is not [IPV6]:PORT"
	start_fails --metrics-listen '[1.2.3.4]:9100'
	assert_equal "$status" 2
	assert_output --partial "'1.2.3.4' is not an IPv6 address"
	start_fails --metrics-listen 127.0.0.1:65536
	assert_equal "$status" 2
	assert_output --partial "port 65536 is out of range (1-65535)"
	start_fails --metrics-listen 127.0.0.1:0
	assert_equal "$status" 2
	assert_output --partial "port 0 is out of range"
	start_fails --metrics-listen 127.0.0.1:99999999999999999999
	assert_equal "$status" 2
	assert_output --partial "is out of range"
	start_fails --metrics-listen 127.0.0.1:-1
	assert_equal "$status" 2
	assert_output --partial "port '-1' is not a decimal number"
	start_fails --metrics-listen '127.0.0.1: 80'
	assert_equal "$status" 2
	assert_output --partial "is not a decimal number"
	start_fails --metrics-listen ''
	assert_equal "$status" 2
	assert_output --partial "empty address"
	start_fails --metrics-listen "$(head -c 5000 /dev/zero | tr '\0' 1):80"
	assert_equal "$status" 2
	assert_output --partial "address longer than 63 bytes"
	# an address this machine does not have: bind() says why
	start_fails --metrics-listen 192.0.2.1:9100
	assert_equal "$status" 2
	assert_output --partial "metrics endpoint 192.0.2.1:9100: Cannot assign requested address"
	# a port in use: a listener held by this test
	local port
	port="$(free_port)"
	python3 -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
time.sleep(60)' "$port" >"$BATS_TEST_TMPDIR/hold" &
	HOLD_PID=$!
	for _ in $(seq 100); do grep -q ready "$BATS_TEST_TMPDIR/hold" && break; sleep 0.1; done
	start_fails --metrics-listen "127.0.0.1:$port"
	assert_equal "$status" 2
	assert_output --partial "metrics endpoint 127.0.0.1:$port: Address already in use"
}

@test "[cluster] metrics_listen errors name the file and line" {
	local dir conf line
	dir="$(mktemp -d)"
	conf="$dir/bad.ini"
	sed 's/^\[cluster\]$/[cluster]\nmetrics_listen = 10.0.0.1:70000/' "$DEMO" >"$conf"
	line="$(grep -n '^metrics_listen' "$conf" | cut -d: -f1)"
	start_fails -c "$conf"
	assert_equal "$status" 2
	assert_output --partial "$conf:$line: metrics_listen: port 70000 is out of range (1-65535)"
	sed 's/^\[cluster\]$/[cluster]\nmetrics_listen = nowhere/' "$DEMO" >"$conf"
	start_fails -c "$conf"
	assert_equal "$status" 2
	assert_output --partial "$conf:$line: metrics_listen: 'nowhere' has no port"
	rm -rf "$dir"
}

@test "the example alert rules pass promtool check rules and use metrics lendfs serves" {
	run promtool check rules "$RULES"
	assert_success
	assert_output --partial "SUCCESS: 3 rules found"
	run promtool check config "$ROOT/contrib/prometheus/prometheus.yml"
	assert_success
	mount_endpoint
	curl -sS -f -o "$TMP/endpoint.txt" "$URL"
	local names n
	names="$(grep -o 'lendfs_[a-z_]*' "$RULES" | sort -u)"
	[ -n "$names" ]
	for n in $names; do
		grep -q "^# TYPE $n " "$TMP/endpoint.txt" || {
			echo "$RULES: $n is not a metric lendfs serves" >&2
			return 1
		}
	done
	# the excerpt in docs/ADMIN.md says what the file says
	local e nexpr=0
	while IFS= read -r e; do
		nexpr=$((nexpr + 1))
		grep -qxF -- "$e" "$RULES" || {
			echo "docs/ADMIN.md: '$e' is not in $RULES" >&2
			return 1
		}
	done < <(grep -E '^ +expr: ' "$ROOT/docs/ADMIN.md")
	assert_equal "$nexpr" 3
}

# prom_get PATH: Prometheus's HTTP API answer for PATH (curl fails on an
# HTTP error).
prom_get() {
	curl -sS -f "http://127.0.0.1:$PROM_PORT$1"
}

@test "a real Prometheus server scrapes the endpoint: target up, lendfs_active_lends is the lend" {
	mount_endpoint
	PROM_PORT="$(free_port)"
	cat >"$TMP/prometheus.yml" <<-CONF
	global:
	  scrape_interval: 1s
	  evaluation_interval: 1s
	rule_files:
	  - $RULES
	scrape_configs:
	  - job_name: lendfs
	    static_configs:
	      - targets: ['127.0.0.1:$PORT']
	CONF
	run promtool check config "$TMP/prometheus.yml"
	assert_success
	/usr/bin/prometheus --config.file="$TMP/prometheus.yml" \
		--storage.tsdb.path="$TMP/tsdb" \
		--web.listen-address="127.0.0.1:$PROM_PORT" \
		>"$TMP/prometheus.log" 2>&1 3>&- &
	PROM_PID=$!
	local i health=
	for ((i = 0; i < PROM_WAIT_TENTHS; i++)); do
		health="$(prom_get /api/v1/targets 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print(t["health"])' 2>/dev/null || true)"
		[ "$health" = up ] && break
		kill -0 "$PROM_PID" || { cat "$TMP/prometheus.log" >&2; return 1; }
		sleep 0.1
	done
	[ "$health" = up ] || { echo "target: '$health'" >&2; cat "$TMP/prometheus.log" >&2; return 1; }

	lend $GPU nodeB
	local value=
	for ((i = 0; i < PROM_WAIT_TENTHS; i++)); do
		value="$(prom_get '/api/v1/query?query=lendfs_active_lends' | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(" ".join(s["value"][1] for s in r if s["metric"].get("job") == "lendfs"))')"
		[ "$value" = 1 ] && break
		sleep 0.1
	done
	assert_equal "$value" 1
	# the lend's metrics, scraped: lends_total and the LUT entry it uses
	run prom_get '/api/v1/query?query=lendfs_lends_total'
	assert_output --partial '"value":['
	assert_output --regexp '"1"\]'
	run prom_get '/api/v1/query?query=sum(lendfs_lut_entries_used)'
	refute_output --partial '"0"]'
	# the example rules loaded, none firing on a healthy cluster
	run prom_get /api/v1/rules
	assert_output --partial '"name":"LendfsHostOffline"'
	assert_output --partial '"name":"LendfsLutNearlyExhausted"'
	assert_output --partial '"name":"LendfsRequestsFailing"'
	run prom_get /api/v1/alerts
	refute_output --partial '"state":"firing"'
}

@test "an unmount while scrapes are in flight: the endpoint goes first, the daemon exits 0" {
	mount_endpoint
	lend $GPU nodeB
	( for _ in $(seq 2000); do curl -s -o /dev/null "$URL" || true; done ) &
	local scraper=$!
	sleep 0.5
	run curl -sS -o /dev/null -w '%{http_code}' "$URL"
	assert_output 200
	# lendfs_unmount fails the test on a non-zero exit (a crash, ASan)
	lendfs_unmount
	kill "$scraper" 2>/dev/null || true
	wait "$scraper" 2>/dev/null || true
	run curl -sS -o /dev/null "$URL"
	assert_failure
}
