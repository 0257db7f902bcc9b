#!/usr/bin/env bats
# docs/ABI documents every path of the tree: walk a mounted demo cluster
# with lends, peers, a VM borrower and a temporary file, map every path
# to its entry (docs/ABI/README), and fail on anything undocumented, on
# entries that name nothing, and on entries that do not match.

load helpers

ABI="$ROOT/docs/ABI"
TMPNAME=.abi-tmp

setup() {
	local conf
	conf="$(mktemp)"
	{ cat "$DEMO"; printf '\n[vm nodeB/g1]\nram = 0x0-0x3fffffff\n'; } >"$conf"
	lendfs_mount "$conf"
	mv "$conf" "$TMP/demo-vm.ini"
	# a composition on nodeB (peers/), a VM borrower, a VM made with
	# mkdir (when the tree supports it), a temp file
	lend $GPU nodeB
	lend nodeC:0000:5e:00.0 nodeB
	lend nodeD:0000:3b:00.0 vm:nodeB/g1
	mkdir "$MNT/hosts/nodeC/vms/v2" 2>/dev/null || true
	mkdir "$MNT/compositions/job"
	: >"$(dev $NIC)/$TMPNAME"
	: >"$MNT/compositions/job/$TMPNAME"
}

teardown() {
	lendfs_unmount
}

# walk: "RELPATH<TAB>ENTRY<TAB>TYPE<TAB>MODE" for every path of the tree,
# ENTRY being the name of its docs/ABI entry (docs/ABI/README).
walk() {
	(cd "$MNT" && find . -mindepth 1 -printf '%P\t%y\t%m\n') |
		awk -F'\t' -v OFS='\t' -v tmp="$TMPNAME" '{
			n = split($1, c, "/")
			if (c[1] == "devices") {
				if (n >= 2) c[2] = "ID"
				if (n >= 3 && c[3] == tmp) c[3] = "TMP"
				if (n >= 4 && c[3] == "peers") c[4] = "PEER"
				if (n >= 4 && c[3] == "plans") c[4] = "HOST"
			} else if (c[1] == "compositions") {
				if (n >= 2) c[2] = "NAME"
				if (n >= 3 && c[3] == tmp) c[3] = "TMP"
				if (n >= 4 && c[3] == "plans") c[4] = "HOST"
			} else if (c[1] == "hosts") {
				if (n >= 2) c[2] = "HOST"
				if (n >= 4 && (c[3] == "lent" || c[3] == "borrowed"))
					c[4] = "ID"
				if (n >= 4 && c[3] == "vms") c[4] = "VM"
				if (n >= 6 && c[3] == "vms" && c[5] == "devices")
					c[6] = "ID"
			}
			s = c[1]
			for (i = 2; i <= n; i++) s = s "-" c[i]
			print $1, s, $2, $3
		}'
}

@test "the walk sees what the test set up" {
	run walk
	assert_success
	assert_line --regexp "^devices/$GPU/peers/nodeC:0000:5e:00.0	devices-ID-peers-PEER	f	"
	assert_line --regexp "^hosts/nodeB/borrowed/nodeD:0000:3b:00.0	hosts-HOST-borrowed-ID	l	"
	assert_line --regexp "^hosts/nodeA/lent/$GPU	hosts-HOST-lent-ID	l	"
	assert_line --regexp "^devices/$NIC/$TMPNAME	devices-ID-TMP	f	"
	assert_line --regexp "^devices/$GPU/plans/nodeD	devices-ID-plans-HOST	f	444$"
	assert_line --regexp "^fabric/topology.dot	fabric-topology.dot	f	444$"
	assert_line --regexp "^hosts/nodeB/vms/g1	hosts-HOST-vms-VM	d	"
	assert_line --regexp "^compositions/job/devices	compositions-NAME-devices	f	"
	assert_line --regexp "^compositions/job/$TMPNAME	compositions-NAME-TMP	f	"
	assert_line --regexp "^compositions/job/plans/nodeA	compositions-NAME-plans-HOST	f	444$"
}

@test "every file and directory of the mount has a docs/ABI entry" {
	local rel entry missing=0
	while IFS=$'\t' read -r rel entry _; do
		if [ ! -f "$ABI/$entry" ]; then
			echo "undocumented: $rel (add docs/ABI/$entry, see docs/ABI/README)" >&2
			missing=$((missing + 1))
		fi
	done < <(walk)
	[ "$missing" -eq 0 ]
}

@test "every docs/ABI entry names something the mount shows" {
	local seen f stale=0
	seen="$(walk | cut -f2 | sort -u)"
	for f in "$ABI"/*; do
		f=${f##*/}
		[ "$f" = README ] && continue
		if ! grep -qxF "$f" <<<"$seen"; then
			echo "stale: docs/ABI/$f names nothing in the demo tree" >&2
			stale=$((stale + 1))
		fi
	done
	[ "$stale" -eq 0 ]
}

@test "every entry is well formed: What matches its name, the fields are there" {
	run awk '
		function check(   f) {
			if (name == "" || name == "README") return
			for (f in need)
				if (!(f in have)) { print name ": no " f ": field"; bad++ }
			delete have
		}
		BEGIN { split("What Date Version Contact Mode Description Values Errors", l, " ")
			for (i in l) need[l[i]] = 1 }
		FNR == 1 { check(); name = FILENAME; sub(/.*\//, "", name) }
		name == "README" { next }
		/^[A-Z][a-z]+:/ { f = $0; sub(/:.*/, "", f); have[f] = 1 }
		/^What:/ {
			w = $0; sub(/^What:[ \t]*/, "", w); sub(/^\/lend\//, "", w)
			gsub(/[<>]/, "", w); gsub(/\//, "-", w)
			if (w != name) { print name ": What: names " w; bad++ }
		}
		!/^([A-Z][a-z]+:|\t|$)/ { print name ": line " FNR " is neither a field nor tab-indented"; bad++ }
		END { check(); exit bad > 0 }
	' "$ABI"/*
	assert_success
	assert_output ""
}

@test "Mode: in each entry matches the tree (read-only, read-write, directory)" {
	run awk -F'\t' '
		FILENAME != "-" && /^Mode:/ {
			n = FILENAME; sub(/.*\//, "", n)
			m = $0; sub(/^Mode:[ \t]*/, "", m); mode[n] = m; next
		}
		FILENAME == "-" {
			want = mode[$2]
			if ($3 == "d") got = "directory"
			else if ($3 == "l") got = "read-only"
			else got = (int(substr($4, length($4) - 2, 1)) % 4 >= 2) ? \
				"read-write" : "read-only"
			if (want != got) print $1 ": " got ", docs/ABI/" $2 " says " want
		}
	' "$ABI"/* - < <(walk)
	assert_success
	assert_output ""
}
