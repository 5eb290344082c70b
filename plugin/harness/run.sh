#!/bin/sh
# Builds out_trailwatch.so and the C harness, then runs the harness against
# the plugin as Fluent Bit's Go proxy would drive it.
#   plugin/harness/run.sh [runs]      (default 1 run; non-zero exit if any failed)
# Needs: go, gcc, libmsgpack-dev (apt-get install -y libmsgpack-dev).
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-1}
mkdir -p bin
go build -buildmode=c-shared -o bin/out_trailwatch.so ./plugin
go build -o bin/trailwatch ./cmd/trailwatch
gcc -O2 -Wall -Wextra -o bin/harness plugin/harness/harness.c -ldl -lmsgpackc -lpthread
failed=0
i=1
while [ "$i" -le "$runs" ]; do
	echo "# run $i of $runs"
	bin/harness bin/out_trailwatch.so "$PWD/conf/rules" bin/trailwatch || failed=$((failed + 1))
	i=$((i + 1))
done
echo "# $failed of $runs runs failed"
[ "$failed" -eq 0 ]
