package instance

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Log levels, as Fluent Bit names them.
const (
	LevelOff = iota
	LevelError
	LevelWarn
	LevelInfo
	LevelDebug
)

// ParseLevel reads a log_level value.
func ParseLevel(s string) int {
	switch s {
	case "off":
		return LevelOff
	case "error":
		return LevelError
	case "warn", "warning":
		return LevelWarn
	case "debug", "trace":
		return LevelDebug
	}
	return LevelInfo
}

// Logger writes lines in Fluent Bit's own format, with the instance's name:
// [2026/11/23 16:20:00] [ info] [output:trailwatch:trailwatch.0] message
type Logger struct {
	mu    *sync.Mutex
	w     io.Writer
	name  string
	level int
}

var logMu sync.Mutex

// NewLogger logs for one instance at a level.
func NewLogger(w io.Writer, instance string, level int) *Logger {
	return &Logger{mu: &logMu, w: w, name: instance, level: level}
}

func (l *Logger) printf(level int, tag, format string, args ...any) {
	if l == nil || level > l.level {
		return
	}
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	fmt.Fprintf(l.w, "[%s] [%5s] [output:trailwatch:%s] %s\n", time.Now().Format("2006/01/02 15:04:05"), tag, l.name, msg)
	l.mu.Unlock()
}

// Errorf logs at error level.
func (l *Logger) Errorf(format string, args ...any) { l.printf(LevelError, "error", format, args...) }

// Warnf logs at warn level.
func (l *Logger) Warnf(format string, args ...any) { l.printf(LevelWarn, "warn", format, args...) }

// Infof logs at info level.
func (l *Logger) Infof(format string, args ...any) { l.printf(LevelInfo, "info", format, args...) }

// Debugf logs at debug level.
func (l *Logger) Debugf(format string, args ...any) { l.printf(LevelDebug, "debug", format, args...) }
