package configs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "25s", want: 25 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: " 2m ", want: 2 * time.Minute},
		{in: "0", want: 0},
		{in: "-1s", want: -time.Second},
		{in: "25", wantErr: `"25" has no unit; write a duration like 25s`},
		{in: "2.5", wantErr: `"2.5" has no unit; write a duration like 2.5s`},
		{in: "soon", wantErr: `"soon" is not a duration; write one like 25s, 1m30s or 100ms`},
		{in: "1d", wantErr: `"1d" is not a duration`},
		{in: "", wantErr: "empty; write a duration like 25s"},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.Duration() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		back, err := ParseDuration(got.String())
		if err != nil || back != got {
			t.Errorf("ParseDuration(%q.String()=%q) = %v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "1MB", want: 1_000_000},
		{in: "10mb", want: 10_000_000},
		{in: "512KiB", want: 512 << 10},
		{in: "512kib", want: 512 << 10},
		{in: "300MiB", want: 300 << 20},
		{in: "2GB", want: 2_000_000_000},
		{in: "1GiB", want: 1 << 30},
		{in: "1TB", want: 1e12},
		{in: "1e6", want: 1_000_000},
		{in: "1.5KiB", want: 1536},
		{in: "1000000", want: 1_000_000},
		{in: "1024B", want: 1024},
		{in: "1 MB", want: 1_000_000},
		{in: "0", want: 0},
		{in: "300M", wantErr: `"300M" is ambiguous; write 300MB (powers of 1000) or 300MiB (powers of 1024)`},
		{in: "10k", wantErr: `"10k" is ambiguous`},
		{in: "lots", wantErr: `"lots" is not a size; write one like 1MB, 512KiB or 1000000 (bytes)`},
		{in: "MB", wantErr: `"MB" is not a size`},
		{in: "-1MB", wantErr: `"-1MB" is negative`},
		{in: "1.5B", wantErr: `"1.5B" is not a whole number of bytes`},
		{in: "99999999TB", wantErr: `"99999999TB" is too large`},
		{in: "1e30", wantErr: `"1e30" is too large`},
		{in: "", wantErr: "empty; write a size like 1MB"},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("ParseByteSize(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || int64(got) != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := map[ByteSize]string{
		0: "0", 1_000_000: "1MB", 10_000_000: "10MB", 512 << 10: "512KiB", 300 << 20: "300MiB",
		1 << 30: "1GiB", 1234567: "1234567B", 1500: "1500B", 2000: "2KB",
	}
	for in, want := range tests {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(in), got, want)
		}
		if back, err := ParseByteSize(want); err != nil || back != in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", want, back, err, int64(in))
		}
	}
}

func TestParseInstances(t *testing.T) {
	tests := []struct {
		in      string
		want    Instances
		wantErr string
	}{
		{in: "max", want: InstancesMax},
		{in: "MAX", want: InstancesMax},
		{in: "1", want: 1},
		{in: " 16 ", want: 16},
		{in: "0", wantErr: "0 instances cannot serve anything; write a whole number >= 1, or max"},
		{in: "-1", wantErr: "-1 instances cannot serve anything"},
		{in: "lots", wantErr: `"lots" is not a number of instances; write a whole number like 4, or max`},
		{in: "2.5", wantErr: `"2.5" is not a number of instances`},
		{in: "", wantErr: `"" is not a number of instances`},
	}
	for _, tc := range tests {
		got, err := ParseInstances(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("ParseInstances(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseInstances(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if InstancesMax.String() != "max" || Instances(3).String() != "3" {
		t.Errorf("String: %q %q", InstancesMax.String(), Instances(3).String())
	}
}

func TestInstancesCount(t *testing.T) {
	if n := Instances(3).Count(); n != 3 {
		t.Errorf("Instances(3).Count() = %d", n)
	}
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	if got, want := InstancesMax.Count(), runtime.GOMAXPROCS(0); got != want {
		t.Errorf("max = %d, want GOMAXPROCS(0) = %d", got, want)
	}
	t.Setenv("GOMAXPROCS", "1")
	if got, want := InstancesMax.Count(), runtime.NumCPU(); got != want {
		t.Errorf("max with $GOMAXPROCS set = %d, want NumCPU = %d", got, want)
	}
}

func TestTypesJSON(t *testing.T) {
	type T struct {
		D Duration  `json:"d"`
		B ByteSize  `json:"b"`
		I Instances `json:"i"`
		M Instances `json:"m"`
	}
	in := T{D: Duration(90 * time.Second), B: 1_000_000, I: 4, M: InstancesMax}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"d":"1m30s","b":1000000,"i":4,"m":"max"}`; string(js) != want {
		t.Fatalf("json = %s, want %s", js, want)
	}
	var out T
	if err := json.Unmarshal(js, &out); err != nil || out != in {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	// Hand-written JSON may use the YAML spellings.
	if err := json.Unmarshal([]byte(`{"b":"1MiB","i":"2"}`), &out); err != nil || out.B != 1<<20 || out.I != 2 {
		t.Fatalf("lenient JSON = %+v, %v", out, err)
	}
	for _, bad := range []string{`{"d":25}`, `{"d":"25"}`, `{"i":0}`, `{"i":-1}`, `{"b":"lots"}`, `{"b":true}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("json.Unmarshal(%s) accepted", bad)
		}
	}
}

// What yaml.Marshal writes, Load reads back to the same config.
func TestYAMLMarshalRoundTrip(t *testing.T) {
	for name, c := range map[string]*Config{"default": Default(), "everything": fullConfig()} {
		t.Run(name, func(t *testing.T) {
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "frutos.yaml")
			if err := os.WriteFile(path, out, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Load(LoadOptions{File: path, Getenv: envMap("EMIT_KEY", fullEmitKey)})
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			sameConfig(t, got, c)
		})
	}
}
