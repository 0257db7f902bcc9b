#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# zk.sh - real ZooKeeper servers for tests, on 127.0.0.1, on free ports.
#
#   zk.sh start DIR [N]     start a standalone server (N=1, the default) or an
#                           N-node ensemble; print the connect string once
#                           every node serves (ZK_START_TIMEOUT, 90 s)
#   zk.sh stop DIR          stop every node: TERM, KILL after 5 s (idempotent)
#   zk.sh leader DIR        the index of the leader (standalone: 1)
#   zk.sh mode DIR I        node I's mode: standalone, leader or follower;
#                           "down" or "not-serving" (exit 1) otherwise
#   zk.sh kill DIR I        kill -9 node I
#   zk.sh restart DIR I     start node I again with its config, wait for it
#
# DIR/nodeI/ holds node I's zoo.cfg, myid, data and zookeeper.log;
# DIR/nodeI.pid its PID; DIR/connect the connect string
# "127.0.0.1:P1,127.0.0.1:P2,...".  Servers run with tickTime=500 and
# sessions of 1 to 20 s, so a test can let a 2 s session expire.
#
# Environment: ZK_JAVA (java), ZK_CLASSPATH (found under /usr/share/java),
# ZK_START_TIMEOUT (90, seconds), ZK_BIND (127.0.0.1): the address the
# client ports listen on, read at start; 0.0.0.0 lets daemons in network
# namespaces reach them through a veth (tests/cluster/netns.bash).  The
# connect string and srvr still use 127.0.0.1 then; the quorum ports stay
# on 127.0.0.1 either way.
#
# Needs bash (/dev/tcp for the srvr four-letter command), ss (iproute2),
# timeout (coreutils) and a JRE; Debian 12: zookeeper default-jre-headless.

set -euo pipefail

ZK_JAVA=${ZK_JAVA:-java}
ZK_START_TIMEOUT=${ZK_START_TIMEOUT:-90}
ZK_BIND=${ZK_BIND:-127.0.0.1}
ZK_MAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain
JAVA_DIR=/usr/share/java

die()
{
	echo "zk.sh: $*" >&2
	exit 1
}

usage()
{
	sed -n '4,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# zookeeper.jar names the rest of its class path in its manifest; it does
# not name an SLF4J binding, without which the server logs nothing.
classpath()
{
	local b

	if [ -n "${ZK_CLASSPATH:-}" ]; then
		echo "$ZK_CLASSPATH"
		return
	fi
	[ -r "$JAVA_DIR/zookeeper.jar" ] ||
		die "no $JAVA_DIR/zookeeper.jar (Debian: apt-get install zookeeper)"
	for b in slf4j-simple slf4j-jdk14 slf4j-log4j12 slf4j-nop; do
		if [ -r "$JAVA_DIR/$b.jar" ]; then
			echo "$JAVA_DIR/zookeeper.jar:$JAVA_DIR/$b.jar"
			return
		fi
	done
	echo "$JAVA_DIR/zookeeper.jar"
}

# Free means no socket of any state on the port, and outside the ephemeral
# range, where the kernel picks client ports (ours and everyone else's).
port_free()
{
	[ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
}

# pick_ports COUNT: COUNT distinct free ports in 10000-32767, into PORTS.
pick_ports()
{
	local p tries=0

	PORTS=()
	while [ "${#PORTS[@]}" -lt "$1" ]; do
		tries=$((tries + 1))
		[ "$tries" -lt 10000 ] || die "no free ports in 10000-32767"
		p=$((10000 + RANDOM % 22768))
		case " ${PORTS[*]} " in *" $p "*) continue ;; esac
		port_free "$p" && PORTS+=("$p")
	done
}

# check_node I: I names a node of the cluster in DIR.
check_node()
{
	case ${1:-} in
	'' | *[!0-9]* | 0*) die "bad node index '${1:-}'" ;;
	esac
	[ -f "$DIR/node$1/zoo.cfg" ] || die "$DIR: no node $1"
}

nodes()
{
	local n=0

	while [ -f "$1/node$((n + 1))/zoo.cfg" ]; do
		n=$((n + 1))
	done
	echo "$n"
}

client_port()
{
	sed -n 's/^clientPort=//p' "$1/node$2/zoo.cfg"
}

# client_addr DIR I: where node I's client port answers (the wildcard is
# reached on loopback).
client_addr()
{
	local a

	a=$(sed -n 's/^clientPortAddress=//p' "$1/node$2/zoo.cfg")
	case $a in '' | 0.0.0.0) a=127.0.0.1 ;; esac
	echo "$a"
}

# node_pid DIR I: node I's PID, if it runs (and is still that server).
node_pid()
{
	local pid state

	[ -f "$1/node$2.pid" ] || return 1
	pid=$(cat "$1/node$2.pid")
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null) ||
		return 1
	[ "$state" != Z ] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null |
		grep -qxF "$1/node$2/zoo.cfg" || return 1
	echo "$pid"
}

# srvr DIR I: node I's answer to the srvr four-letter command.
srvr()
{
	# shellcheck disable=SC2016 # $1 of the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$2/$1" &&
		printf srvr >&3 && cat <&3' srvr "$(client_port "$1" "$2")" \
		"$(client_addr "$1" "$2")" 2>/dev/null
}

# mode_of DIR I: the Mode: of node I's srvr, empty if it does not serve.
mode_of()
{
	{ srvr "$1" "$2" || true; } | sed -n 's/^Mode: //p'
}

launch()
{
	local dir=$1 i=$2

	# fd 3 closed: bats waits for every holder of its fd 3.
	"$ZK_JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-XX:-UsePerfData \
		-Dorg.slf4j.simpleLogger.showDateTime=true \
		-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
		-cp "$ZK_CP" "$ZK_MAIN" "$dir/node$i/zoo.cfg" \
		</dev/null >>"$dir/node$i/zookeeper.log" 2>&1 3>&- &
	echo $! >"$dir/node$i.pid"
}

log_tail()
{
	echo "zk.sh: last lines of $1/node$2/zookeeper.log:" >&2
	tail -n 25 "$1/node$2/zookeeper.log" >&2 || true
}

# wait_serving DIR I...: until each node answers srvr with a Mode: line.
wait_serving()
{
	local dir=$1 deadline i left
	shift

	deadline=$((SECONDS + ZK_START_TIMEOUT))
	left=" $* "
	while :; do
		for i in $left; do
			if [ -n "$(mode_of "$dir" "$i")" ]; then
				left=${left/ $i / }
			elif ! node_pid "$dir" "$i" >/dev/null; then
				echo "zk.sh: node $i exited" >&2
				log_tail "$dir" "$i"
				return 1
			fi
		done
		[ -n "${left// /}" ] || return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			for i in $left; do
				echo "zk.sh: node $i not serving after" \
					"$ZK_START_TIMEOUT s" >&2
				log_tail "$dir" "$i"
			done
			return 1
		fi
		sleep 0.2
	done
}

# stop_nodes DIR I...: TERM, up to 5 s, KILL; return once all are gone.
stop_nodes()
{
	local dir=$1 i pids="" pid tries left
	shift

	for i in "$@"; do
		if pid=$(node_pid "$dir" "$i"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids="$pids $i"
		fi
	done
	for tries in $(seq 50) kill $(seq 50) gone; do
		left=""
		for i in $pids; do
			if pid=$(node_pid "$dir" "$i"); then
				left="$left $i"
				[ "$tries" != kill ] ||
					kill -KILL "$pid" 2>/dev/null || true
			fi
		done
		pids=$left
		[ -n "$pids" ] || break
		[ "$tries" != gone ] || die "node(s)$pids survived SIGKILL"
		sleep 0.1
	done
	for i in "$@"; do
		rm -f "$dir/node$i.pid"
	done
}

# write_config DIR I N: node I of N, its ports at PORTS[3(I-1)...]: client,
# quorum, election.
write_config()
{
	local dir=$1 i=$2 n=$3 j

	mkdir -p "$dir/node$i"
	echo "$i" >"$dir/node$i/myid"
	{
		echo "tickTime=500"
		echo "initLimit=20"
		echo "syncLimit=10"
		echo "minSessionTimeout=1000"
		echo "maxSessionTimeout=20000"
		echo "dataDir=$dir/node$i"
		echo "clientPortAddress=$ZK_BIND"
		echo "clientPort=${PORTS[3 * (i - 1)]}"
		echo "4lw.commands.whitelist=*"
		echo "admin.enableServer=false"
		if [ "$n" -gt 1 ]; then
			for j in $(seq "$n"); do
				echo "server.$j=127.0.0.1:${PORTS[3 * j - 2]}:${PORTS[3 * j - 1]}"
			done
		fi
	} >"$dir/node$i/zoo.cfg"
}

# start_once N: write the configs, launch, wait.  Returns 2 when a port
# was taken between pick_ports and the server's bind (worth a retry).
start_once()
{
	local n=$1 i connect=""

	pick_ports $((3 * n))
	for i in $(seq "$n"); do
		write_config "$DIR" "$i" "$n"
		connect="$connect${connect:+,}$(client_addr "$DIR" "$i"):$(client_port "$DIR" "$i")"
	done
	echo "$connect" >"$DIR/connect"
	for i in $(seq "$n"); do
		launch "$DIR" "$i"
	done
	# shellcheck disable=SC2046
	wait_serving "$DIR" $(seq "$n") && return 0
	# shellcheck disable=SC2046
	stop_nodes "$DIR" $(seq "$n")
	! grep -qs "Address already in use" "$DIR"/node*/zookeeper.log || return 2
	return 1
}

cmd_start()
{
	local n=${1:-1} try rc

	case $n in [1-9]) ;; *) die "bad node count '$n' (1 to 9)" ;; esac
	[ ! -e "$DIR/node1" ] ||
		die "$DIR already holds a cluster (zk.sh stop, then a new DIR)"

	for try in 1 2 3; do
		rc=0
		start_once "$n" || rc=$?
		case $rc in
		0)
			cat "$DIR/connect"
			return 0
			;;
		2)
			echo "zk.sh: a port was taken meanwhile; new ports" \
				"(try $try of 3)" >&2
			rm -rf "$DIR"/node*
			;;
		*)
			exit 1
			;;
		esac
	done
	exit 1
}

cmd_stop()
{
	# shellcheck disable=SC2046
	[ ! -f "$DIR/node1/zoo.cfg" ] || stop_nodes "$DIR" $(seq "$(nodes "$DIR")")
}

cmd_leader()
{
	local i m

	for i in $(seq "$(nodes "$DIR")"); do
		m=$(mode_of "$DIR" "$i")
		if [ "$m" = leader ] || [ "$m" = standalone ]; then
			echo "$i"
			return 0
		fi
	done
	die "$DIR: no node is leader"
}

cmd_mode()
{
	local m

	check_node "${1:-}"
	m=$(mode_of "$DIR" "$1")
	if [ -n "$m" ]; then
		echo "$m"
	elif node_pid "$DIR" "$1" >/dev/null; then
		echo not-serving
		return 1
	else
		echo down
		return 1
	fi
}

cmd_kill()
{
	local pid

	check_node "${1:-}"
	pid=$(node_pid "$DIR" "$1") || die "node $1 is not running"
	kill -KILL "$pid"
	while node_pid "$DIR" "$1" >/dev/null; do
		sleep 0.05
	done
	rm -f "$DIR/node$1.pid"
}

cmd_restart()
{
	check_node "${1:-}"
	stop_nodes "$DIR" "$1"
	launch "$DIR" "$1"
	if ! wait_serving "$DIR" "$1"; then
		stop_nodes "$DIR" "$1"
		exit 1
	fi
}

# Every command takes DIR; all paths below are absolute, as the servers'
# command lines (node_pid compares them) and data dirs are.
cmd=${1:-}
[ -n "${2:-}" ] || usage
case $cmd in
start)
	mkdir -p "$2"
	;;
stop)
	[ -d "$2" ] || exit 0
	;;
leader | mode | kill | restart)
	[ -f "$2/node1/zoo.cfg" ] || die "$2: no cluster here (zk.sh start $2)"
	;;
*)
	usage
	;;
esac
DIR=$(cd "$2" && pwd)
case $cmd in
start | restart)
	command -v "$ZK_JAVA" >/dev/null ||
		die "no $ZK_JAVA (Debian: apt-get install default-jre-headless)"
	ZK_CP=$(classpath)
	;;
esac
shift 2
"cmd_$cmd" "$@"
