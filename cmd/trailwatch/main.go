// Command trailwatch runs Elastic detection rules on AWS CloudTrail records:
// it lists rule sets, scans CloudTrail files, seeds new_terms history and
// manages the history database.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `trailwatch: Elastic detection rules on AWS CloudTrail, at the edge.

Usage:
  trailwatch rules PATH...              list the rules under PATH (files or folders)
  trailwatch scan --rules PATH FILE...  evaluate the rules on CloudTrail files, alerts to stdout
  trailwatch backfill --rules PATH --db FILE FILE...
                                        record new_terms history from old CloudTrail, no alerts
  trailwatch db stats|prune|export|import --db FILE
                                        inspect and maintain the state file
  trailwatch serve [--config FILE] [--listen-http ADDR] [--listen-forward ADDR] ...
                                        the engine as a sidecar (Vector, forward senders)
  trailwatch help COMMAND               show a command's flags
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit status: 0 success,
// 1 the command ran but found problems in its input, 2 a usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "rules":
		return cmdRules(rest, stdout, stderr)
	case "scan":
		return cmdScan(rest, stdin, stdout, stderr)
	case "backfill":
		return cmdBackfill(rest, stdin, stdout, stderr)
	case "db":
		return cmdDB(rest, stdout, stderr)
	case "serve":
		return cmdServe(rest, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return run([]string{rest[0], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "trailwatch: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// usageError names what a command's line lacks (each of missing is a
// phrase, given only when its condition holds), then prints the usage: a
// usage alone left the user to guess what was wrong.
func usageError(stderr io.Writer, fs *flag.FlagSet, cmd string, missing ...string) int {
	for _, m := range missing {
		if m != "" {
			fmt.Fprintf(stderr, "trailwatch %s: %s\n", cmd, m)
		}
	}
	fs.Usage()
	return 2
}

// lacking returns what when cond holds, else "".
func lacking(cond bool, what string) string {
	if cond {
		return what
	}
	return ""
}
