// Command loadserve measures trailwatch serve's HTTP input: it cuts an
// NDJSON file into batches of -batch lines, gzips them all beforehand, and
// has -clients goroutines POST them (each batch once) to -url, then prints
// requests/s and records/s over the whole run.
//
//	go run ./testdata/gen -n 400000 > ct.ndjson
//	trailwatch serve --rules ... --listen-http 127.0.0.1:8088 &
//	go run ./testdata/loadserve -url http://127.0.0.1:8088/ ct.ndjson
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8088/", "serve's HTTP input")
	clients := flag.Int("clients", 8, "concurrent clients")
	batch := flag.Int("batch", 1000, "records a request")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: loadserve [-url U] [-clients N] [-batch N] FILE.ndjson")
		os.Exit(2)
	}
	bodies, records, err := batches(flag.Arg(0), *batch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadserve:", err)
		os.Exit(1)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				if err := post(*url, bodies[i]); err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "loadserve:", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start).Seconds()
	fmt.Printf("%d requests (%d failed), %d records in %.2f s: %.1f requests/s, %.0f records/s\n",
		len(bodies), failed.Load(), records, d, float64(len(bodies))/d, float64(records)/d)
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// batches reads the file's lines into gzipped bodies of n lines.
func batches(name string, n int) ([][]byte, int, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var bodies [][]byte
	var cur bytes.Buffer
	zw := gzip.NewWriter(&cur)
	lines, records := 0, 0
	flush := func() error {
		if err := zw.Close(); err != nil {
			return err
		}
		bodies = append(bodies, bytes.Clone(cur.Bytes()))
		cur.Reset()
		zw.Reset(&cur)
		lines = 0
		return nil
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if _, werr := zw.Write(line); werr != nil {
				return nil, 0, werr
			}
			lines++
			records++
			if lines == n {
				if ferr := flush(); ferr != nil {
					return nil, 0, ferr
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if lines > 0 {
		if err := flush(); err != nil {
			return nil, 0, err
		}
	}
	return bodies, records, nil
}

func post(url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
