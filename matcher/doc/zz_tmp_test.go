package doc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTmpCorpus(t *testing.T) {
	files, _ := filepath.Glob("/tmp/fz/*")
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		lines := strings.SplitN(string(raw), "\n", 3)
		lit := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatal(f, err)
		}
		data := []byte(s)
		start := time.Now()
		done := make(chan string, 1)
		go func() {
			n, err := ParseJSON(data)
			done <- "parsed"
			scanDoc(data, true)
			json.Valid(data)
			if err == nil {
				out := n.AppendJSON(nil)
				ParseJSON(out)
				ParseJSONPrefix(data)
				n.JavaString()
			}
			done <- "all"
		}()
		for i := 0; i < 2; i++ {
			select {
			case st := <-done:
				_ = st
			case <-time.After(3 * time.Second):
				t.Fatalf("%s stuck (%q)", f, data)
			}
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Logf("%s took %v", f, d)
		}
	}
}
