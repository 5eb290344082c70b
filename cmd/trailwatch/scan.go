package main

import (
	"fmt"
	"io"
)

func cmdScan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "trailwatch scan: coming with the CloudTrail reader")
	return 2
}
