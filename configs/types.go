package configs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "25s", "1m30s" or "100ms" in YAML and
// JSON. A bare number is refused (except 0): "25" could mean seconds or
// milliseconds, so the unit is required.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d the way time.Duration does ("25s", "2m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration reads a duration with a unit, like "25s" or "1m30s".
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty; write a duration like 25s")
	}
	if s == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("%q has no unit; write a duration like %ss", s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write one like 25s, 1m30s or 100ms", s)
	}
	return Duration(d), nil
}

// MarshalJSON writes d as a string like "25s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string like "25s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"25s\", got %s", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a string like "25s" (github.com/goccy/go-yaml).
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a number of bytes. It reads plain integers ("1000000"), decimal
// units ("1MB" = 1,000,000, "10kb"), binary units ("512KiB" = 524,288) and
// exponent notation ("1e6"); units are case-insensitive. Bare K, M and G are
// refused because PM2 reads them as binary while "MB" here is decimal. In JSON
// a ByteSize is a plain integer.
type ByteSize int64

var byteUnits = []struct {
	name string
	mult int64
}{
	// Largest first, so String picks the largest unit that divides exactly.
	{"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
}

// String formats b with the largest unit that divides it exactly ("1MB",
// "512KiB", "1234B"); ParseByteSize reads it back to the same value.
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range byteUnits {
		if int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// ParseByteSize reads a size like "1MB", "512KiB", "10mb", "1e6" or "1000000".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a size; write one like 1MB, 512KiB or 1000000 (bytes)", s)
	if s == "" {
		return 0, errors.New("empty; write a size like 1MB, 512KiB or 1000000 (bytes)")
	}
	num, mult := s, int64(1)
	lower := strings.ToLower(s)
	for _, u := range append(byteUnits, struct {
		name string
		mult int64
	}{"B", 1}) {
		if strings.HasSuffix(lower, strings.ToLower(u.name)) {
			num, mult = strings.TrimSpace(s[:len(s)-len(u.name)]), u.mult
			break
		}
	}
	if mult == 1 && num == s {
		switch lower[len(lower)-1] {
		case 'k', 'm', 'g', 't':
			return 0, fmt.Errorf("%q is ambiguous; write %sB (powers of 1000) or %siB (powers of 1024)", s, s, s)
		}
	}
	if num == "" {
		return 0, bad
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative; a size is 0 or more", s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return ByteSize(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, bad
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative; a size is 0 or more", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return ByteSize(v), nil
}

// UnmarshalJSON reads an integer (what MarshalJSON writes) or a string like "1MB".
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*b = ByteSize(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("size: want an integer number of bytes, got %s", data)
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes b as a string like "1MB" (github.com/goccy/go-yaml).
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// Instances is how many workers to run: a count >= 1, or InstancesMax.
type Instances int

// InstancesMax means one worker per usable CPU; it is written "max".
const InstancesMax Instances = -1

// Count resolves the number of workers to start. "max" is the number of CPUs
// this process may use: runtime.GOMAXPROCS(0), which follows cgroup CPU limits
// and CPU affinity, unless the GOMAXPROCS environment variable is set (then it
// describes some other wish, so runtime.NumCPU() is used).
func (n Instances) Count() int {
	if n != InstancesMax {
		return int(n)
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.NumCPU()
	}
	return runtime.GOMAXPROCS(0)
}

// String returns "max" or the count.
func (n Instances) String() string {
	if n == InstancesMax {
		return "max"
	}
	return strconv.Itoa(int(n))
}

// ParseInstances reads "max" or a whole number >= 1.
func ParseInstances(s string) (Instances, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "max") {
		return InstancesMax, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of instances; write a whole number like 4, or max", s)
	}
	if n < 1 {
		return 0, fmt.Errorf("%d instances cannot serve anything; write a whole number >= 1, or max", n)
	}
	return Instances(n), nil
}

// MarshalJSON writes "max" or the count as a number.
func (n Instances) MarshalJSON() ([]byte, error) {
	if n == InstancesMax {
		return []byte(`"max"`), nil
	}
	return []byte(strconv.Itoa(int(n))), nil
}

// UnmarshalJSON reads "max" or a number >= 1.
func (n *Instances) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	v, err := ParseInstances(s)
	if err != nil {
		return err
	}
	*n = v
	return nil
}

// MarshalYAML writes "max" or the count (github.com/goccy/go-yaml).
func (n Instances) MarshalYAML() (any, error) {
	if n == InstancesMax {
		return "max", nil
	}
	return int(n), nil
}
