package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
)

// DumpFile is the saved process list in the state home.
const DumpFile = "dump.json"

// Dump is what save writes and resurrect reads: how to load the
// configuration again (never secrets) and how many workers ran.
type Dump struct {
	Version   int                 `json:"version"`
	SavedAt   time.Time           `json:"saved_at"`
	App       string              `json:"app"`
	Load      control.LoadOptions `json:"load"`
	Instances int                 `json:"instances"`
}

// Save writes dump.json (atomically, mode 0600).
func (d *Daemon) Save() (string, error) {
	a := d.currentApp()
	if a == nil {
		return "", notFoundf("nothing to save: start the app with `frutos start`")
	}
	d.mu.Lock()
	dump := Dump{Version: 1, SavedAt: time.Now().UTC(), App: a.cfg.App, Load: a.load, Instances: d.sup.Count()}
	d.mu.Unlock()
	path := filepath.Join(d.opts.Home, DumpFile)
	if err := WriteDump(path, dump); err != nil {
		return "", err
	}
	return fmt.Sprintf("saved %s of %s to %s", plural.Count(dump.Instances, "worker", "workers"), dump.App, path), nil
}

// WriteDump writes a dump file atomically.
func WriteDump(path string, dump Dump) error {
	b, err := json.MarshalIndent(dump, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// ReadDump reads the saved process list of a home.
func ReadDump(home string) (Dump, error) {
	path := filepath.Join(home, DumpFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return Dump{}, fmt.Errorf("nothing saved in %s: run `frutos save` while the app runs", home)
		}
		return Dump{}, err
	}
	var dump Dump
	if err := json.Unmarshal(b, &dump); err != nil {
		return Dump{}, fmt.Errorf("%s is damaged: %w", path, err)
	}
	if dump.Version != 1 {
		return Dump{}, fmt.Errorf("%s has version %d; this frutos reads version 1", path, dump.Version)
	}
	return dump, nil
}
