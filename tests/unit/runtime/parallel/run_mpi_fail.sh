#!/usr/bin/env bash
# Expects an MPI job with one failing rank to end (non-zero) within a bound instead of hanging.
#   run_mpi_fail.sh <mpiexec> <np> <binary> [--crash]
set -u
mpiexec=$1 np=$2 bin=$3 mode=${4:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
start=$(date +%s)
timeout 60 "$mpiexec" --oversubscribe -np "$np" "$bin" $mode > /tmp/sp_mpi_fail.$$.log 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
cat /tmp/sp_mpi_fail.$$.log
rm -f /tmp/sp_mpi_fail.$$.log
echo "run_mpi_fail: mpirun exit code $rc after ${elapsed}s"
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung"; exit 1; fi
if [ "$rc" -eq 0 ]; then echo "FAIL: the job succeeded although a rank failed"; exit 1; fi
if [ "$elapsed" -gt 30 ]; then echo "FAIL: took ${elapsed}s to come down"; exit 1; fi
echo "PASS"
