# Partitions (issue 17): each daemon in its own network namespace, joined
# to the host's by a veth pair, so that its link to ZooKeeper can be cut
# and healed without killing it.  Needs root and iproute2; ZooKeeper must
# listen on the wildcard (ZK_BIND=0.0.0.0 tests/zk/zk.sh start ...).
#
#   netns_up HOST...   a namespace per HOST (lendfs-NET-HOST), veth
#                      lfNh (host side, 10.77.N.1/24) <-> lfNn (10.77.N.2);
#                      node_up then runs HOST's daemon in it with nsenter
#                      --net (not `ip netns exec`, whose private mount
#                      namespace would hide the FUSE mount), connected to
#                      ZooKeeper's ports on 10.77.N.1
#   cut HOST           the host side of HOST's veth down: its packets to
#                      and from ZooKeeper are dropped (no RST, no error:
#                      like a cable pulled), the daemon keeps running
#   heal HOST          the link up again
#   netns_down         every namespace and veth of this file gone
#                      (idempotent; also after a failure)
#   netns_teardown     a test's teardown: the daemons' logs when it
#                      failed, every link healed, cluster_down, netns_down
#
# The records: $NETNS_DIR/ns lists "HOST NAME N" per namespace, so that
# netns_down finds them even when the arrays are gone.

# shellcheck disable=SC2034 # read by cluster_helpers.bash and the tests
declare -gA NODE_NS=() NODE_ZK=() NODE_NET=()

NETNS_DIR=""

# a subnet index free on this machine (no lfNh link, no namespace using it)
netns_pick() {
	local n tries
	for ((tries = 0; tries < 200; tries++)); do
		n=$((10 + RANDOM % 240))
		ip link show "lf${n}h" >/dev/null 2>&1 && continue
		[ ! -e "/run/netns/lendfs-$n" ] || continue
		grep -qs " $n\$" "$NETNS_DIR/ns" && continue
		echo "$n"
		return 0
	done
	return 1
}

netns_up() {
	local h n name
	[ -n "$NETNS_DIR" ] || NETNS_DIR="$(mktemp -d)"
	for h in "$@"; do
		n=$(netns_pick) || return 1
		name="lendfs-$n-$h"
		echo "$h $name $n" >>"$NETNS_DIR/ns"
		ip netns add "$name"
		ip link add "lf${n}h" type veth peer name "lf${n}n"
		ip link set "lf${n}n" netns "$name"
		ip addr add "10.77.$n.1/24" dev "lf${n}h"
		ip link set "lf${n}h" up
		ip -n "$name" addr add "10.77.$n.2/24" dev "lf${n}n"
		ip -n "$name" link set lo up
		ip -n "$name" link set "lf${n}n" up
		NODE_NS[$h]=$name
		NODE_NET[$h]=$n
		# the ensemble's client ports, seen from the namespace
		NODE_ZK[$h]=${ZK//127.0.0.1/10.77.$n.1}
	done
}

cut() {
	ip link set "lf${NODE_NET[$1]}h" down
}

heal() {
	ip link set "lf${NODE_NET[$1]}h" up
}

netns_down() {
	local h name n
	[ -n "$NETNS_DIR" ] || return 0
	while read -r h name n; do
		ip link del "lf${n}h" 2>/dev/null || true
		ip netns del "$name" 2>/dev/null || true
	done <"$NETNS_DIR/ns"
	rm -rf "$NETNS_DIR"
	NETNS_DIR=""
	NODE_NS=()
	NODE_ZK=()
	NODE_NET=()
}

# The teardown of a test of nodeA, nodeB and nodeC in namespaces.
netns_teardown() {
	local h status=0
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${CTMP:-}" ]; then
		for h in nodeA nodeB nodeC; do
			echo "# last lines of the log of $h:"
			tail -n 25 "$CTMP/log.$h" 2>/dev/null | grep -v ZOO_ | sed 's/^/#   /'
		done >&3
	fi
	for h in nodeA nodeB nodeC; do
		[ -z "${NODE_NET[$h]:-}" ] || heal "$h" 2>/dev/null || true
	done
	cluster_down || status=1
	netns_down
	return $status
}
