#!/bin/sh
# Builds out_trailwatch.so and the C harness, then runs the harness against
# the plugin as Fluent Bit's Go proxy would drive it.
#   plugin/harness/run.sh [runs]      (default 1 run; non-zero exit if any failed)
# Needs: go and gcc (the chunks are MessagePack written by
# plugin/harness/chunks into bin/harness_chunks.h).
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-1}
mkdir -p bin
go build -buildmode=c-shared -o bin/out_trailwatch.so ./plugin
go build -o bin/trailwatch ./cmd/trailwatch
go run ./plugin/harness/chunks -o bin/harness_chunks.h
gcc -O2 -Wall -Wextra -Ibin -o bin/harness plugin/harness/harness.c -ldl -lpthread
failed=0
i=1
while [ "$i" -le "$runs" ]; do
	echo "# run $i of $runs"
	bin/harness bin/out_trailwatch.so "$PWD/conf/rules" bin/trailwatch || failed=$((failed + 1))
	i=$((i + 1))
done
echo "# $failed of $runs runs failed"
[ "$failed" -eq 0 ]
