package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// annotationExpects is a flag annotation saying what the flag's value must
// be when its type says too little (an int that is a port).
const annotationExpects = "frutos/expects"

// expectPort marks the flag name of fs as a port: a value that is not a
// number reads "--port x is not a port number; use 1-65535".
func expectPort(fs *pflag.FlagSet, name string) {
	if err := fs.SetAnnotation(name, annotationExpects, []string{"a port number; use 1-65535"}); err != nil {
		panic(err) // a programming error: no such flag
	}
}

// flagValueError rewrites pflag's message for a value of the wrong kind
// (`invalid argument "x" for "-p, --port" flag: strconv.ParseInt: parsing
// "x": invalid syntax`) into what the flag takes; other flag errors are
// returned as they are.
func flagValueError(err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err
	}
	return badFlagValue(ive.GetFlag(), ive.GetValue(), ive.Unwrap())
}

// badFlagValue says that value is not what the flag fl takes: "--lines
// many is not a whole number". A flag of a type not known here gets its
// own error (cause) after the value.
func badFlagValue(fl *pflag.Flag, value string, cause error) error {
	shown := fmt.Sprintf("--%s %s", fl.Name, quoteIfBlank(value))
	what := ""
	if e := fl.Annotations[annotationExpects]; len(e) > 0 {
		what = e[0]
	} else {
		switch fl.Value.Type() {
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			what = "a whole number"
		case "float32", "float64":
			what = "a number"
		case "duration":
			what = "a duration; write one like 30s, 5m or 1h30m"
		case "bool":
			// --json maybe would read as --json and an argument.
			shown, what = fmt.Sprintf("--%s=%s", fl.Name, quoteIfBlank(value)), "true or false"
		}
	}
	if what == "" {
		return fmt.Errorf("%s: %v", shown, cause)
	}
	return fmt.Errorf("%s is not %s", shown, what)
}

// quoteIfBlank quotes a value that would not be seen as it is: empty or
// with spaces.
func quoteIfBlank(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\n") {
		return fmt.Sprintf("%q", v)
	}
	return v
}
