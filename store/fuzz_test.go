package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzOpenDamaged: any bytes as a state file: Open refuses them with an
// error or opens them, and then every read and write works or fails with
// an error; Salvage reads what it can. Never a panic, a fault or a hang.
func FuzzOpenDamaged(f *testing.F) {
	good, _ := damageFixture(f, 10)
	f.Add(good)
	f.Add(good[:12<<10])
	zeroed := bytes.Clone(good)
	clear(zeroed[4*4096 : 5*4096])
	f.Add(zeroed)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.db")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(p, Options{NoSync: true, LockTimeout: time.Second}); err == nil {
			useAll(t, s)
		}
		Salvage(p, &bytes.Buffer{})
	})
}
