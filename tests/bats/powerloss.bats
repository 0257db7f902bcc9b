#!/usr/bin/env bats
# Power loss under lendfs (issue 17, docs/TESTING.md "Power loss
# (powerfs)"): the state directory on powerfs (tests/tools/powerfs.c),
# the power cut and the daemon killed at once, then restarted;
# tests/tools/powercut.py checks every acknowledged request, PRAGMA
# integrity_check, and `lendfs --check` with the sim's registers.
#
#   POWERLOSS_CUTS    random cuts under concurrent writers (default 15 here)
#   POWERLOSS_STRIDE  the step test cuts after every Nth operation (default 4)
# `make check-powerloss` runs 200 cuts and every step.

load helpers

@test "power cuts during concurrent lends and returns lose nothing acknowledged" {
	local cuts="${POWERLOSS_CUTS:-15}"
	run python3 "$ROOT/tests/tools/powercut.py" --build "$BUILD_DIR" --cuts "$cuts"
	echo "$output"
	assert_success
	assert_output --regexp "^powercut: $cuts cuts \([0-9]+ while lendfs started\), [1-9][0-9]* acknowledged \([1-9][0-9]* lends, [1-9][0-9]* returns\), [0-9]+ in flight at a cut, lost 0"
}

@test "a power cut after each disk operation of a start, lends, returns and a restart" {
	local stride="${POWERLOSS_STRIDE:-4}"
	run python3 "$ROOT/tests/tools/powercut.py" --build "$BUILD_DIR" --steps \
		--stride "$stride"
	echo "$output"
	assert_success
	assert_output --regexp "^powercut: steps: a cut after .* of the [0-9]+ operations .* \([1-9][0-9]* runs\), [1-9][0-9]* acknowledged, lost 0"
}
