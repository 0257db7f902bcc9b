#!/usr/bin/env bats
# The Slurm SPANK plugin (contrib/slurm/, docs/SLURM.md) against a real
# Slurm: munged, slurmctld and slurmd (Debian's slurm-wlm 22.05) started
# here with their own configuration, state, spool and ports, one Slurm node
# (sn1, mapped to lendfs host nodeB by plugstack.conf) and one lendfs
# mount (conf/demo.ini, SQLite, sim fabric).  Jobs run as root with
# --lend / --lend-composition; the mount says what they hold.
#
# One cluster serves every test (setup_file): starting Slurm takes seconds.
# The time-limit job is submitted there too, so that its minute (Slurm's
# smallest limit) passes while the other tests run; the last test waits
# for it.

load helpers

SPANK="$BUILD_DIR/lendfs_spank.so"
GRACE=300
TL_DEV=nodeC:0000:af:00.0	# the time-limit job's device
WAIT_S=40			# bound of every wait but the time limit's

# wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds.
wait_for() {
	local limit=$(($1 * 5)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	echo "not within $((limit / 5)) s: $*" >&2
	return 1
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

write_slurm_conf() {
	local ctld_port slurmd_port
	ctld_port="$(free_port)"
	slurmd_port="$(free_port)"
	while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(free_port)"; done
	cat >"$SL/slurm.conf" <<-EOF
	ClusterName=lendfstest
	SlurmctldHost=$(hostname)(127.0.0.1)
	SlurmctldPort=$ctld_port
	SlurmdPort=$slurmd_port
	SlurmUser=root
	SlurmdUser=root
	AuthType=auth/munge
	AuthInfo=socket=$SL/munge/socket
	CredType=cred/munge
	StateSaveLocation=$SL/state
	SlurmdSpoolDir=$SL/spool
	SlurmctldPidFile=$SL/slurmctld.pid
	SlurmdPidFile=$SL/slurmd.pid
	SlurmctldLogFile=$SL/log/slurmctld.log
	SlurmdLogFile=$SL/log/slurmd.log
	SlurmdDebug=debug
	ProctrackType=proctrack/pgid
	TaskPlugin=task/none
	JobAcctGatherType=jobacct_gather/none
	AccountingStorageType=accounting_storage/none
	JobCompType=jobcomp/none
	SchedulerType=sched/builtin
	SelectType=select/cons_tres
	SelectTypeParameters=CR_CPU
	MpiDefault=none
	SwitchType=switch/none
	PlugStackConfig=$SL/plugstack.conf
	PrologFlags=Alloc
	KillWait=2
	MinJobAge=600
	ReturnToService=2
	SlurmdParameters=config_overrides
	InactiveLimit=0
	NodeName=sn1 NodeAddr=127.0.0.1 NodeHostname=$(hostname) CPUs=8 State=UNKNOWN
	PartitionName=test Nodes=sn1 Default=YES MaxTime=INFINITE State=UP
	EOF
	echo "required $SPANK mount=$MNT grace=$GRACE map=sn1=nodeB state=$SL/spank" \
		>"$SL/plugstack.conf"
}

node_ready() {
	case "$(sinfo -h -n sn1 -o %t 2>/dev/null)" in
	idle | mix | alloc) return 0 ;;
	esac
	return 1
}

setup_file() {
	[ -f "$SPANK" ] || { echo "no $SPANK: make all first" >&2; return 1; }
	lendfs_mount
	SL="$TMP/slurm"
	mkdir -p "$SL/munge" "$SL/state" "$SL/spool" "$SL/log" "$SL/out" "$SL/jobs"
	chmod 700 "$SL/munge"
	export TMP MNT LENDFS_PID LENDFS_CONFIG SL
	export SLURM_CONF="$SL/slurm.conf"
	mungekey -c -k "$SL/munge/munge.key"
	munged -f --key-file="$SL/munge/munge.key" --socket="$SL/munge/socket" \
		--pid-file="$SL/munge/pid" --log-file="$SL/munge/log" \
		--seed-file="$SL/munge/seed" 3>&-
	write_slurm_conf
	slurmctld -c -f "$SLURM_CONF" 3>&-
	slurmd -f "$SLURM_CONF" -N sn1 3>&-
	wait_for "$WAIT_S" node_ready
	# the time-limit job: one minute, then its device must come back
	cat >"$SL/jobs/forever.sh" <<-'EOF'
	#!/bin/sh
	echo "devices=$LENDFS_DEVICES"
	sleep 600
	EOF
	TL_JOB="$(sbatch --parsable --time=1 --lend="$TL_DEV" \
		-o "$SL/out/%j" "$SL/jobs/forever.sh")"
	date +%s >"$SL/tl_submitted"
	export TL_JOB
}

# stop PIDFILE: end the daemon whose pid it holds, bounded, then kill it.
stop_pidfile() {
	local pid
	[ -f "$1" ] || return 0
	pid="$(cat "$1")"
	kill "$pid" 2>/dev/null || return 0
	wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
	true
}

teardown_file() {
	[ -n "${SL:-}" ] || return 0
	scancel --full --signal=KILL --partition=test 2>/dev/null
	wait_for 20 bash -c '[ -z "$(squeue -h 2>/dev/null)" ]' || true
	stop_pidfile "$SL/slurmd.pid"
	stop_pidfile "$SL/slurmctld.pid"
	munged --stop --socket="$SL/munge/socket" >/dev/null 2>&1 || true
	lendfs_unmount
}

teardown() {
	if [ "${BATS_TEST_COMPLETED:-}" != 1 ] && [ -n "${SL:-}" ]; then
		echo "--- slurmctld.log (tail)"; tail -20 "$SL/log/slurmctld.log"
		echo "--- slurmd.log (lendfs, errors)"
		grep -E 'lendfs|error' "$SL/log/slurmd.log" | tail -20
	fi >&2
}

# job_field JOB KEY: KEY's value in `scontrol show job` (one word)
job_field() {
	scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# job_comment JOB: its AdminComment, spaces and all (a line of its own)
job_comment() {
	scontrol show job "$1" | sed -n 's/^ *AdminComment=//p' | sed 's/ *$//'
}

job_state_is() {
	[ "$(job_field "$1" JobState)" = "$2" ]
}

# event_pid ID EVENT: the pid= of the last EVENT of device ID in events
event_pid() {
	grep -E "^[0-9]+ [0-9]+ $1 $2 " "$MNT/events" | tail -1 | sed -n 's/.* pid=\([0-9]*\) .*/\1/p'
}

# file_has FILE REGEX
file_has() {
	grep -qE "$2" "$1" 2>/dev/null
}

attr_is() {
	[ "$(cat "$MNT/$1")" = "$2" ]
}

# A job that prints what it sees, then waits for $SL/go-JOBID (bounded).
write_waiting_job() {
	cat >"$SL/jobs/wait.sh" <<-'EOF'
	#!/bin/sh
	echo "devices=$LENDFS_DEVICES"
	for d in $(echo "$LENDFS_DEVICES" | tr , ' '); do
		echo "$d state=$(cat "$MNT/devices/$d/state") borrower=$(cat "$MNT/devices/$d/borrower")"
	done
	echo started
	i=0
	while [ ! -e "$SL/go-$SLURM_JOB_ID" ] && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo done
	EOF
	chmod +x "$SL/jobs/wait.sh"
}

# submit ARGS...: sbatch the waiting job; its ID in JOB.
submit() {
	write_waiting_job
	JOB="$(sbatch --parsable -o "$SL/out/%j" --export=ALL,MNT="$MNT",SL="$SL" \
		"$@" "$SL/jobs/wait.sh")"
	[ -n "$JOB" ]
}

# a lend's lease, read while the job runs: TIME_LIMIT_S + GRACE, minus the
# seconds since the prolog set it
assert_lease() {
	local lease
	lease="$(cat "$MNT/devices/$1/lease")"
	[ "$lease" -le $(($2 + GRACE)) ] && [ "$lease" -ge $(($2 + GRACE - 20)) ] || {
		echo "lease of $1 is '$lease', not about $(($2 + GRACE))" >&2
		return 1
	}
}

@test "sbatch --lend: the job holds its devices (state, lease, LENDFS_DEVICES) and they come back when it ends" {
	submit --time=2 --lend="$GPU,nodeC:0000:5e:00.0"
	wait_for "$WAIT_S" file_has "$SL/out/$JOB" '^started$'
	run cat "$SL/out/$JOB"
	assert_line "devices=$GPU,nodeC:0000:5e:00.0"
	assert_line "$GPU state=lent borrower=nodeB"
	assert_line "nodeC:0000:5e:00.0 state=lent borrower=nodeB"
	assert_lease "$GPU" 120
	assert_lease nodeC:0000:5e:00.0 120
	run grep -E " $GPU lent borrower=nodeB .*comm=slurmstepd" "$MNT/events"
	assert_success
	touch "$SL/go-$JOB"
	wait_for "$WAIT_S" job_state_is "$JOB" COMPLETED
	wait_for "$WAIT_S" attr_is "devices/$GPU/state" available
	wait_for "$WAIT_S" attr_is "devices/nodeC:0000:5e:00.0/state" available
	run grep -E " $GPU returned borrower=nodeB" "$MNT/events"
	assert_success
	[ ! -e "$SL/spank/$JOB" ]	# the job's record is gone with it
}

@test "scancel: a cancelled job's devices come back" {
	submit --time=5 --lend=nodeD:0000:3b:00.0
	wait_for "$WAIT_S" file_has "$SL/out/$JOB" '^started$'
	assert_equal "$(cat "$MNT/devices/nodeD:0000:3b:00.0/borrower")" nodeB
	assert_lease nodeD:0000:3b:00.0 300
	scancel "$JOB"
	wait_for "$WAIT_S" job_state_is "$JOB" CANCELLED
	wait_for "$WAIT_S" attr_is "devices/nodeD:0000:3b:00.0/state" available
	run grep -c '^done$' "$SL/out/$JOB"
	assert_output 0	# it was killed, not finished
}

@test "a job asking for a busy device does not start: the device and the reason in AdminComment and slurmd's log; nothing it asked for stays lent" {
	lend nodeD:0000:3b:00.0 nodeC
	submit --time=2 --lend="$GPU,nodeD:0000:3b:00.0"
	wait_for "$WAIT_S" job_state_is "$JOB" CANCELLED
	run job_comment "$JOB"
	assert_output "lendfs: cannot lend nodeD:0000:3b:00.0: EBUSY: lent to nodeC; return it first"
	run job_field "$JOB" Reason
	assert_output Prolog
	run grep -F "lendfs: job $JOB: cannot lend nodeD:0000:3b:00.0: EBUSY: lent to nodeC" \
		"$SL/log/slurmd.log"
	assert_success
	[ ! -e "$SL/out/$JOB" ]	# the script never ran
	# all or nothing: the GPU, lent first, was returned; the busy device
	# is still nodeC's; the node was not drained for the job's fault
	assert_equal "$(cat "$MNT/devices/$GPU/state")" available
	# ... by the prolog itself, which lent it (not by the epilog after it)
	assert_equal "$(event_pid "$GPU" returned)" "$(event_pid "$GPU" lent)"
	assert_equal "$(cat "$MNT/devices/nodeD:0000:3b:00.0/borrower")" nodeC
	node_ready
	lend nodeD:0000:3b:00.0 ""
}

@test "srun and salloc asking for a busy device: refused, nothing runs, nothing stays lent" {
	lend nodeD:0000:3b:00.0 nodeC
	run timeout 60 srun --time=2 --lend=nodeD:0000:3b:00.0 touch "$SL/srun-ran"
	assert_failure
	run timeout 60 salloc --time=2 --lend="$GPU,nodeD:0000:3b:00.0" srun touch "$SL/salloc-ran"
	assert_failure
	assert_output --partial "has been revoked"
	[ ! -e "$SL/srun-ran" ]
	[ ! -e "$SL/salloc-ran" ]
	run job_comment "$(squeue -h -t all -o %i -n touch | sort -n | tail -1)"
	assert_output "lendfs: cannot lend nodeD:0000:3b:00.0: EBUSY: lent to nodeC; return it first"
	assert_equal "$(cat "$MNT/devices/$GPU/state")" available
	assert_equal "$(cat "$MNT/devices/nodeD:0000:3b:00.0/borrower")" nodeC
	node_ready
	lend nodeD:0000:3b:00.0 ""
}

@test "a device already lent to the node's host (not by the job): refused, and the job's epilog leaves it lent" {
	lend nodeD:0000:3b:00.0 nodeB
	submit --time=2 --lend=nodeD:0000:3b:00.0
	wait_for "$WAIT_S" job_state_is "$JOB" CANCELLED
	run job_comment "$JOB"
	assert_output "lendfs: cannot lend nodeD:0000:3b:00.0: EBUSY: already lent to nodeB (not by this job)"
	sleep 1	# the epilog has run (the job is CANCELLED); nothing may follow
	assert_equal "$(cat "$MNT/devices/nodeD:0000:3b:00.0/borrower")" nodeB
	lend nodeD:0000:3b:00.0 ""
}

@test "a device re-lent elsewhere while the job ran is not returned by its epilog" {
	submit --time=2 --lend=nodeD:0000:3b:00.0
	wait_for "$WAIT_S" file_has "$SL/out/$JOB" '^started$'
	lend nodeD:0000:3b:00.0 ""	# an administrator takes it back ...
	lend nodeD:0000:3b:00.0 nodeC	# ... and lends it to another host
	touch "$SL/go-$JOB"
	wait_for "$WAIT_S" job_state_is "$JOB" COMPLETED
	wait_for "$WAIT_S" bash -c "[ ! -e '$SL/spank/$JOB' ]"	# the epilog ran
	assert_equal "$(cat "$MNT/devices/nodeD:0000:3b:00.0/borrower")" nodeC
	lend nodeD:0000:3b:00.0 ""
}

@test "an unknown device: the job does not start, with the reason" {
	submit --time=2 --lend=nodeB:0000:99:00.0
	wait_for "$WAIT_S" job_state_is "$JOB" CANCELLED
	run job_comment "$JOB"
	assert_output --partial "cannot lend nodeB:0000:99:00.0: no such device on $MNT"
	node_ready
}

@test "a device of the node's own host: EINVAL from lendfs, the job does not start" {
	submit --time=2 --lend="$NIC"
	wait_for "$WAIT_S" job_state_is "$JOB" CANCELLED
	run job_comment "$JOB"
	assert_output --regexp "^lendfs: cannot lend $NIC: EINVAL: .+"
	assert_equal "$(cat "$MNT/devices/$NIC/state")" available
}

@test "sbatch --lend-composition: the composition is lent with the job and returned after it" {
	mkdir "$MNT/compositions/job1"
	# one write(2) is one request: cat writes the whole list at once
	printf '%s\n%s\n' "$GPU" nodeC:0000:5e:00.0 >"$SL/job1.list"
	cat "$SL/job1.list" >"$MNT/compositions/job1/devices"
	submit --time=3 --lend-composition=job1
	wait_for "$WAIT_S" file_has "$SL/out/$JOB" '^started$'
	run cat "$SL/out/$JOB"
	assert_line "devices=$GPU,nodeC:0000:5e:00.0"
	assert_line "$GPU state=lent borrower=nodeB"
	assert_equal "$(cat "$MNT/compositions/job1/borrower")" nodeB
	assert_equal "$(cat "$MNT/compositions/job1/state")" lent
	if [ -e "$MNT/compositions/job1/lease" ]; then
		assert_lease "$GPU" 180
	fi
	touch "$SL/go-$JOB"
	wait_for "$WAIT_S" job_state_is "$JOB" COMPLETED
	wait_for "$WAIT_S" attr_is compositions/job1/state available
	assert_equal "$(cat "$MNT/devices/$GPU/state")" available
	rmdir "$MNT/compositions/job1"
}

@test "srun --lend: the step's tasks get LENDFS_DEVICES; the device comes back when srun ends" {
	run timeout 60 srun --time=2 --lend=nodeD:0000:3b:00.0 \
		sh -c 'echo "devices=$LENDFS_DEVICES"; cat "$0"' \
		"$MNT/devices/nodeD:0000:3b:00.0/borrower"
	assert_success
	assert_line devices=nodeD:0000:3b:00.0
	assert_line nodeB
	wait_for "$WAIT_S" attr_is "devices/nodeD:0000:3b:00.0/state" available
}

@test "salloc --lend: the allocation holds the device, its srun steps see LENDFS_DEVICES" {
	run timeout 60 salloc --time=2 --lend="$GPU" \
		srun sh -c 'echo "devices=$LENDFS_DEVICES"; cat "$0"' "$MNT/devices/$GPU/state"
	assert_success
	assert_line "devices=$GPU"
	assert_line lent
	wait_for "$WAIT_S" attr_is "devices/$GPU/state" available
}

@test "malformed --lend and --lend-composition values are refused at submission" {
	local bad
	for bad in '' 'a,,b' ',a' 'a,' '../hosts' 'a/b' '.' '..' 'a b' \
		"$GPU,$GPU" "$(printf 'a\001b')" "$(head -c 300 /dev/zero | tr '\0' a)" \
		"$(for i in $(seq 40); do printf 'd%d,' "$i"; done)x"; do
		run sbatch --parsable --lend="$bad" --wrap true
		assert_failure
		assert_output --partial "lendfs: --lend"
	done
	run sbatch --parsable --lend="$(head -c 5000 /dev/zero | tr '\0' a)" --wrap true
	assert_failure
	assert_output --partial "more than 4096 bytes"
	for bad in '' 'a/b' '..' 'a b' "$(head -c 65 /dev/zero | tr '\0' a)"; do
		run sbatch --parsable --lend-composition="$bad" --wrap true
		assert_failure
		assert_output --partial "lendfs: --lend-composition"
	done
	[ -z "$(squeue -h -o %i -t PD,CF)" ]
}

@test "a node whose mount does not answer fails the prolog: Slurm drains the node and holds the job" {
	# plugstack.conf is read again for every prolog: point mount= elsewhere
	# (once the time-limit job's prolog is behind it)
	wait_for "$WAIT_S" job_state_is "$TL_JOB" RUNNING
	mkdir -p "$SL/nomount"
	cp "$SL/plugstack.conf" "$SL/plugstack.conf.good"
	sed -i "s|mount=$MNT |mount=$SL/nomount |" "$SL/plugstack.conf"
	submit --time=2 --lend="$GPU"
	wait_for "$WAIT_S" bash -c 'sinfo -h -n sn1 -o %t | grep -q "^dr"'
	run scontrol show node sn1
	assert_output --partial "Prolog"	# Reason=Prolog error
	run job_field "$JOB" JobState
	assert_output PENDING
	run job_comment "$JOB"
	assert_output "lendfs: cannot lend $GPU: no such device on $SL/nomount"
	[ ! -e "$SL/out/$JOB" ]
	mv "$SL/plugstack.conf.good" "$SL/plugstack.conf"
	scancel "$JOB"
	scontrol update nodename=sn1 state=resume
	wait_for "$WAIT_S" node_ready
	assert_equal "$(cat "$MNT/devices/$GPU/state")" available
}

@test "a job past its time limit: Slurm ends it and its device comes back (the epilog, well before the lease)" {
	local lease left
	# submitted in setup_file with --time=1: lent with a lease of 60+GRACE
	wait_for "$WAIT_S" file_has "$SL/out/$TL_JOB" "^devices=$TL_DEV\$"
	run job_field "$TL_JOB" JobState
	assert_output RUNNING
	lease="$(cat "$MNT/devices/$TL_DEV/lease")"
	left=$((60 + GRACE - ($(date +%s) - $(cat "$SL/tl_submitted"))))
	[ "$lease" -le $((60 + GRACE)) ]
	[ "$lease" -ge $((left - 10)) ]
	# Slurm checks limits every 30 s: at most 60 + 30 + KillWait s
	wait_for 150 job_state_is "$TL_JOB" TIMEOUT
	wait_for "$WAIT_S" attr_is "devices/$TL_DEV/state" available
	run grep -E " $TL_DEV returned borrower=nodeB" "$MNT/events"
	assert_success
	run grep -E " $TL_DEV expired" "$MNT/events"
	assert_failure
}
