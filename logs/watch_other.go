//go:build !linux

package logs

import (
	"errors"
	"fmt"
)

// Watcher would wake followers as soon as their files change; on this
// system NewWatcher fails and followers poll.
type Watcher struct{}

// NewWatcher is not supported here.
func NewWatcher() (*Watcher, error) {
	return nil, fmt.Errorf("watch log files: %w", errors.ErrUnsupported)
}

// Close does nothing.
func (w *Watcher) Close() error { return nil }

func (w *Watcher) subscribe(string) (<-chan struct{}, func(), error) {
	return nil, nil, errors.ErrUnsupported
}
