// Command out_trailwatch is trailwatch as a Fluent Bit output plugin: build it
// with -buildmode=c-shared and load it with `fluent-bit -e out_trailwatch.so`.
// This file is only the cgo shim: it reads properties, hands chunks to the
// flb package, maps errors to return codes and keeps every panic from
// crossing into Fluent Bit.
package main

/*
// The configured log level of this output instance, read through Fluent
// Bit's API (struct flb_api keeps its field order for ABI stability; the Go
// proxy hands plugins a pointer to it). -1 when this Fluent Bit has no
// output_log_check.
struct tw_flb_api {
	void *output_get_property;
	void *input_get_property;
	void *output_get_cmt_instance;
	void *input_get_cmt_instance;
	void *log_print;
	void *input_log_check;
	int (*output_log_check)(void *, int);
};
struct tw_output_plugin {
	void *unused;
	struct tw_flb_api *api;
	void *o_ins;
	void *context;
};
#include <stdlib.h>

static int tw_log_level(void *p) {
	struct tw_output_plugin *pl = p;
	int l, level = 0;
	if (pl == 0 || pl->api == 0 || pl->api->output_log_check == 0 || pl->o_ins == 0) {
		return -1;
	}
	for (l = 1; l <= 5; l++) {
		if (pl->api->output_log_check(pl->o_ins, l)) {
			level = l;
		}
	}
	return level;
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"

	"github.com/trailwatch/trailwatch/flb"
	"github.com/trailwatch/trailwatch/instance"
)

// The plugin's live heap is a few MB, which Go's default collector target
// (GOGC=100) collects every few MB allocated. Unless GOGC is set in Fluent
// Bit's environment, collect at five times the live heap instead: a few MB
// more memory for fewer collections (measured: about 4% less CPU per
// million records inside Fluent Bit).
func init() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
}

var (
	// instances: by handle, the context Fluent Bit keeps for an instance.
	// A handle is never given twice (Fluent Bit keeps a context after
	// exit: a stale one reached the instance that took its id next, and
	// closed it); the id only names the instance.
	instances sync.Map // handle (uint64) -> *running
	handles   atomic.Uint64
	idsMu     sync.Mutex
	ids       = map[int]bool{} // instance ids in use
)

// running is an instance and the id in its name.
type running struct {
	id int
	in *instance.Instance
}

// takeID returns the lowest free instance id, so that after a hot reload
// the instances are named trailwatch.0, trailwatch.1, ... again, as Fluent
// Bit names its own.
func takeID() int {
	idsMu.Lock()
	defer idsMu.Unlock()
	id := 0
	for ids[id] {
		id++
	}
	ids[id] = true
	return id
}

func releaseID(id int) {
	idsMu.Lock()
	delete(ids, id)
	idsMu.Unlock()
}

// induce is a test hook: TRAILWATCH_INDUCE_PANIC=init|flush|exit makes that
// callback panic, so that tests can check the panic comes back as an error
// code and a log line instead of killing Fluent Bit.
func induce(where string) {
	// C's getenv: Go's os.Getenv in a shared object sees only the
	// environment as it was when the Go runtime started.
	name := C.CString("TRAILWATCH_INDUCE_PANIC")
	defer C.free(unsafe.Pointer(name))
	if v := C.getenv(name); v != nil && C.GoString(v) == where {
		panic("induced panic in " + where + " (TRAILWATCH_INDUCE_PANIC)")
	}
}

// guard turns a panic into the given return code, with a log line.
func guard(ret *int, code int, where string) {
	if r := recover(); r != nil {
		fmt.Fprintf(os.Stderr, "[%s] [error] [output:trailwatch] panic in %s, returning %d: %v\n%s",
			time.Now().Format("2006/01/02 15:04:05"), where, code, r, debug.Stack())
		*ret = code
	}
}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) (ret int) {
	defer guard(&ret, -1, "FLBPluginRegister")
	return output.FLBPluginRegister(def, "trailwatch", "Elastic detection rules on AWS CloudTrail")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) (ret int) {
	defer guard(&ret, output.FLB_ERROR, "FLBPluginInit")
	induce("init")
	id := takeID()
	name := "trailwatch." + strconv.Itoa(id)
	// Fluent Bit keeps log_level for itself: read the instance's level
	// through its API when the property itself is not visible.
	levels := []string{"off", "error", "warn", "info", "debug", "debug"}
	level := int(C.tw_log_level(plugin))
	get := func(k string) string {
		v := output.FLBPluginConfigKey(plugin, k)
		if k == "log_level" && v == "" && level >= 0 && level < len(levels) {
			return levels[level]
		}
		return v
	}
	in, err := flb.Open(name, get, os.Stderr)
	if err != nil {
		releaseID(id) // the next instance takes its name
		instance.NewLogger(os.Stderr, name, instance.LevelError).Errorf("cannot start: %v", err)
		return output.FLB_ERROR
	}
	h := handles.Add(1)
	instances.Store(h, &running{id: id, in: in})
	output.FLBPluginSetContext(plugin, h)
	return output.FLB_OK
}

func lookup(ctx unsafe.Pointer) *instance.Instance {
	h, ok := output.FLBPluginGetContext(ctx).(uint64)
	if !ok {
		return nil
	}
	v, _ := instances.Load(h)
	r, _ := v.(*running)
	if r == nil {
		return nil
	}
	return r.in
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) (ret int) {
	defer guard(&ret, output.FLB_ERROR, "FLBPluginFlushCtx")
	induce("flush")
	in := lookup(ctx)
	if in == nil {
		return output.FLB_ERROR
	}
	// The chunk stays valid for the call; records keep their own copies.
	chunk := unsafe.Slice((*byte)(data), int(length))
	return int(flb.Flush(in, C.GoString(tag), chunk))
}

//export FLBPluginFlush
func FLBPluginFlush(data unsafe.Pointer, length C.int, tag *C.char) (ret int) {
	defer guard(&ret, output.FLB_ERROR, "FLBPluginFlush")
	// Only used by Fluent Bit builds without FLBPluginFlushCtx: the first
	// instance takes the chunk.
	var first *instance.Instance
	instances.Range(func(_, v any) bool { first = v.(*running).in; return false })
	if first == nil {
		return output.FLB_ERROR
	}
	return int(flb.Flush(first, C.GoString(tag), unsafe.Slice((*byte)(data), int(length))))
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) (ret int) {
	defer guard(&ret, output.FLB_ERROR, "FLBPluginExitCtx")
	induce("exit")
	h, ok := output.FLBPluginGetContext(ctx).(uint64)
	if !ok {
		return output.FLB_ERROR
	}
	if v, loaded := instances.LoadAndDelete(h); loaded {
		r := v.(*running)
		defer releaseID(r.id)
		if err := r.in.Close(); err != nil {
			r.in.Log.Errorf("exit: %v", err)
			return output.FLB_ERROR
		}
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() (ret int) {
	defer guard(&ret, output.FLB_ERROR, "FLBPluginExit")
	instances.Range(func(k, v any) bool {
		instances.Delete(k)
		r := v.(*running)
		r.in.Close()
		releaseID(r.id)
		return true
	})
	return output.FLB_OK
}

func main() {}
