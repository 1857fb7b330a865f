package redisctl

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw        string
		mode       Mode
		addrs      []string
		db         int
		tls        bool
		master     string
		redacted   string
		username   string // of the data connection (master for sentinel)
		password   string
		sentinelPw string
	}{
		{raw: "redis://localhost:6379", mode: Standalone, addrs: []string{"localhost:6379"}, redacted: "redis://localhost:6379"},
		{raw: "redis://localhost", mode: Standalone, addrs: []string{"localhost:6379"}, redacted: "redis://localhost"},
		{raw: "  redis://10.0.0.5:6380/3  ", mode: Standalone, addrs: []string{"10.0.0.5:6380"}, db: 3, redacted: "redis://10.0.0.5:6380/3"},
		{raw: "REDIS://h:1", mode: Standalone, addrs: []string{"h:1"}, redacted: "REDIS://h:1"},
		{raw: "redis://:s3cret@h:6379/2", mode: Standalone, addrs: []string{"h:6379"}, db: 2, password: "s3cret",
			redacted: "redis://:xxxxx@h:6379/2"},
		{raw: "redis://app:p%40ss%2Fw0rd@h:6379", mode: Standalone, addrs: []string{"h:6379"}, username: "app", password: "p@ss/w0rd",
			redacted: "redis://app:xxxxx@h:6379"},
		{raw: "rediss://default:pw@cache.example.com:6380/0?skip_verify=true", mode: Standalone, tls: true,
			addrs: []string{"cache.example.com:6380"}, username: "default", password: "pw",
			redacted: "rediss://default:xxxxx@cache.example.com:6380/0?skip_verify=true"},
		{raw: "redis://h:6379?db=4&dial_timeout=2s", mode: Standalone, addrs: []string{"h:6379"}, db: 4, redacted: "redis://h:6379?db=4&dial_timeout=2s"},
		{raw: "redis://[::1]:6379", mode: Standalone, addrs: []string{"[::1]:6379"}, redacted: "redis://[::1]:6379"},
		{raw: "unix:///var/run/redis.sock?db=1", mode: Standalone, addrs: []string{"/var/run/redis.sock"}, db: 1,
			redacted: "unix:///var/run/redis.sock?db=1"},
		{raw: "unix://:pw@/tmp/r.sock", mode: Standalone, addrs: []string{"/tmp/r.sock"}, password: "pw", redacted: "unix://:xxxxx@/tmp/r.sock"},
		{raw: "redis+sentinel://s1:26379/1?master_name=mymaster&addr=s2:26379&password=masterpw", mode: Sentinel,
			addrs: []string{"s1:26379", "s2:26379"}, db: 1, master: "mymaster", password: "masterpw",
			redacted: "redis+sentinel://s1:26379/1?addr=s2:26379&master_name=mymaster&password=xxxxx"},
		{raw: "rediss+sentinel://:sentpw@s1?master_name=m", mode: Sentinel, tls: true, addrs: []string{"s1:6379"},
			master: "m", sentinelPw: "sentpw", redacted: "rediss+sentinel://:xxxxx@s1?master_name=m"},
		{raw: "redis+cluster://u:pw@n1:7000?addr=n2:7001&addr=n3:7002", mode: Cluster,
			addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, username: "u", password: "pw",
			redacted: "redis+cluster://u:xxxxx@n1:7000?addr=n2:7001&addr=n3:7002"},
		{raw: "rediss+cluster://n1:7000", mode: Cluster, tls: true, addrs: []string{"n1:7000"}, redacted: "rediss+cluster://n1:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			tg, err := Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tg.Mode != tt.mode || !slices.Equal(tg.Addrs, tt.addrs) || tg.DB != tt.db || tg.TLS != tt.tls || tg.MasterName != tt.master {
				t.Errorf("got mode %s addrs %v db %d tls %v master %q; want %s %v %d %v %q",
					tg.Mode, tg.Addrs, tg.DB, tg.TLS, tg.MasterName, tt.mode, tt.addrs, tt.db, tt.tls, tt.master)
			}
			// configs.RedactURL may re-encode the query; compare decoded.
			if got, _ := url.PathUnescape(tg.URL); got != tt.redacted {
				t.Errorf("URL = %q, want %q", tg.URL, tt.redacted)
			}
			var user, pw, spw string
			switch tg.Mode {
			case Standalone:
				user, pw = tg.single.Username, tg.single.Password
			case Sentinel:
				user, pw, spw = tg.failover.Username, tg.failover.Password, tg.failover.SentinelPassword
			case Cluster:
				user, pw = tg.cluster.Username, tg.cluster.Password
			}
			if user != tt.username || pw != tt.password || spw != tt.sentinelPw {
				t.Errorf("credentials = %q/%q/sentinel %q, want %q/%q/%q", user, pw, spw, tt.username, tt.password, tt.sentinelPw)
			}
			if (tg.TLS && tg.NewClient() == nil) || tg.Client != nil {
				t.Errorf("Parse must not make a client")
			}
		})
	}
}

func TestParseRefusesNonsense(t *testing.T) {
	tests := []struct {
		raw  string
		want string // in the message
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"localhost:6379", "no scheme; write redis://localhost:6379"},
		{"nonsense", "not a Redis URL"},
		{"http://localhost:6379", `scheme "http" is not Redis`},
		{"redis://", "nothing after the scheme"},
		{"redis://:6379", "no host"},
		{"redis://h:notaport", `not a valid URL (invalid port ":notaport"`},
		{"redis://h:99999", `port "99999" is not a TCP port`},
		{"redis://h:", "empty port"},
		{"redis://h:6379/x", `invalid database number: "x"`},
		{"redis://h:6379/1/2", "invalid URL path"},
		{"redis://h:6379?foo=1", "unexpected option: foo"},
		{"redis://h:6379?dial_timeout=soon", "invalid dial_timeout duration"},
		{"redis://h?master_name=m", "master_name is a Sentinel option"},
		{"redis://h?addr=h2:1", "redis+cluster://"},
		{"redis+sentinel://s1:26379", "needs the master's name"},
		{"redis+sentinel://s1?master_name=m&addr=bad", "unable to parse addr param: bad"},
		{"redis+cluster://n1:7000/3", "no database number"},
		{"redis+cluster://n1:7000?addr=", "unable to parse addr param"},
		{"redis+ring://h", `unknown mode "ring"`},
		{"unix+cluster:///tmp/x", "unix sockets are standalone only"},
		{"unix://", "nothing after the scheme"},
		{"unix://h", "empty unix socket path"},
		{"redis://h:6379#x", "fragment"},
		{"redis://:pw@h:xx", `not a valid URL (invalid port ":xx"`},
		{"redis://:p/w@h:6379", "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, err := Parse(tt.raw)
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse(%q) = %v, want a *URLError", tt.raw, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tt.raw, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message has more than one line: %q", err)
			}
		})
	}
}

// A password must never appear in an error, however broken the URL around
// it is.
func TestParseNeverEchoesPassword(t *testing.T) {
	const pw = "Hunter2Secret"
	urls := []string{
		"redis://:" + pw + "@h:notaport",
		"redis://user:" + pw + "@h:99999",
		"redis://user:" + pw + "@:6379",
		"redis://user:" + pw + "/x@h:6379",   // a "/" in the password, not encoded
		"redis://user:/" + pw + "@h:6379",    // the same, password after the slash
		"redis://:" + pw + "%zz@h:6379",      // a bad escape inside the password
		"redis://:" + pw + "@h:6379/banana",  // a bad database number
		"redis://:" + pw + "@h:6379?bogus=1", // an unknown option
		"redis+sentinel://:" + pw + "@s1",    // no master name
		"redis+sentinel://s1?master_name=m&password=" + pw + "&bogus=1",
		"redis+cluster://:" + pw + "@n1/3",
		"http://:" + pw + "@h:6379",
		"redis://:" + pw + "@h?master_name=m",
		"redis://:" + pw + "@h#frag",
	}
	for _, raw := range urls {
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", raw)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), pw[:6]) {
			t.Errorf("Parse error echoes the password: %q", err)
		}
	}
}

func TestOpenMakesAClientPerMode(t *testing.T) {
	for _, raw := range []string{"redis://h:1", "redis+sentinel://h:1?master_name=m", "redis+cluster://h:1"} {
		tg, err := Open(raw, FailFast())
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		if tg.Client == nil {
			t.Fatalf("Open(%q): no client", raw)
		}
		if err := tg.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
