package nodefix

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The Admin UI fixture (testdata/adminui): the official dashboard of
// @socket.io/admin-ui, from npm, in Debian's Chromium driven by
// playwright-core (browser.js). Its scripts share testdata/node's lib.js.

// EnvChromium names the browser when it is not /usr/bin/chromium.
const EnvChromium = "CHROMIUM"

// adminUIModules are the packages whose presence means
// `npm ci --prefix testdata/adminui` has run.
var adminUIModules = []string{"@socket.io/admin-ui", "playwright-core"}

// AdminUIDir is testdata/adminui.
func AdminUIDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(Dir(t)), "adminui")
}

// Chromium is the browser's path.
func Chromium() string {
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// RequireAdminUI skips the test when node, Chromium or the fixture's
// modules are missing (Require's rule: a failure under
// FRUTOS_REQUIRE_NODE=1, as in CI).
func RequireAdminUI(t testing.TB) {
	t.Helper()
	Require(t)
	missing := ""
	if _, err := exec.LookPath(Chromium()); err != nil {
		missing = Chromium() + " is not installed (apt-get install chromium)"
	} else {
		dir := AdminUIDir(t)
		for _, m := range adminUIModules {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(m), "package.json")); err != nil {
				missing = fmt.Sprintf("%s is missing from %s; run: npm ci --prefix testdata/adminui", m, filepath.Join(dir, "node_modules"))
				break
			}
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv(EnvRequireNode) == "1" {
		t.Fatalf("nodefix: %s (%s=1)", missing, EnvRequireNode)
	}
	t.Skipf("nodefix: %s (set %s=1 to fail instead)", missing, EnvRequireNode)
}

// StartAdminUIBrowser serves the official Admin UI on a loopback port,
// opens it in headless Chromium and waits until both are ready. URL() is
// the page's address (its origin differs from the Socket.IO server's, as
// the hosted page's does).
func StartAdminUIBrowser(t testing.TB) *Proc {
	t.Helper()
	RequireAdminUI(t)
	p := startIn(t, AdminUIDir(t), "browser.js", []string{EnvChromium + "=" + Chromium(), "FAIL_SHOTS=" + os.Getenv("FAIL_SHOTS")})
	p.waitPort(t)
	return p
}
