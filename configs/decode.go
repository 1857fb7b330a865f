package configs

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// decodeFile applies the YAML file name (contents data) to c: first the base
// keys, then the env.<c.Env> section over them, so only the keys present in
// the section override. Sections of the other env are decoded into a scratch
// copy, so their mistakes are reported before the day they are deployed.
//
// We walk goccy/go-yaml's AST instead of calling yaml.Unmarshal because
// Unmarshal silently accepts `port: "3000"` and truncates `port: 3.5`, and it
// drops the position of errors returned by custom unmarshalers.
//
// src receives, for each setting the file set, where it was set (see source).
func decodeFile(name string, data []byte, c *Config, src map[string]Error) []error {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return []error{syntaxError(name, err)}
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc.Body == nil {
			continue
		}
		if body != nil {
			pos := doc.Body.GetToken().Position
			if doc.Start != nil {
				pos = doc.Start.Position // the ---
			}
			return []error{&Error{File: name, Line: pos.Line, Column: pos.Column,
				Msg: "a second YAML document; a frutos config is one document (remove the ---)"}}
		}
		body = doc.Body
	}
	if body == nil {
		return nil // empty, or only comments
	}

	d := &decoder{file: name, src: src}
	var envKey *ast.MappingValueNode
	d.mapping(body, reflect.ValueOf(c).Elem(), "", nil, func(key string, mv *ast.MappingValueNode) bool {
		if key != "env" {
			return false
		}
		envKey = mv
		return true
	})
	if envKey != nil {
		d.envSections(envKey, c)
	}
	return d.errs
}

// decoder walks one mapping tree into a struct, by yaml tags.
type decoder struct {
	file   string
	src    map[string]Error // nil while decoding an env section that is not selected
	prefix string           // how paths are shown: "" or "env.production."
	errs   []error
}

func (d *decoder) envSections(mv *ast.MappingValueNode, c *Config) {
	at := mv.Key.GetToken()
	node := d.unwrap(mv.Value, at, "env")
	if node == nil || node.Type() == ast.NullType {
		return
	}
	sections, ok := mappingValues(node)
	if !ok {
		d.fail(at, "env", "env holds per-env sections, like env: {production: {port: 80}}")
		return
	}
	for _, s := range sections {
		name, ktk := keyText(s.Key), s.Key.GetToken()
		if name != Development && name != Production {
			d.fail(ktk, "env."+name, "unknown env %q; the envs are development and production", name)
			continue
		}
		sub := &decoder{file: d.file, prefix: "env." + name + "."}
		target := c
		if name == c.Env {
			sub.src = d.src
		} else {
			scratch := *c
			target = &scratch
		}
		sub.mapping(s.Value, reflect.ValueOf(target).Elem(), "", ktk, func(key string, mv *ast.MappingValueNode) bool {
			if key != "env" {
				return false
			}
			sub.fail(mv.Key.GetToken(), "env", "env sections cannot contain env")
			return true
		})
		d.errs = append(d.errs, sub.errs...)
	}
}

// mapping decodes a YAML mapping into the struct v. at is the key that holds
// it (nil at the top). special may claim a key before the struct fields do.
func (d *decoder) mapping(node ast.Node, v reflect.Value, path string, at *token.Token, special func(string, *ast.MappingValueNode) bool) {
	if at == nil {
		at = node.GetToken()
	}
	node = d.unwrap(node, at, path)
	if node == nil || node.Type() == ast.NullType {
		return // an empty section changes nothing
	}
	values, ok := mappingValues(node)
	if !ok {
		example := "port: 3000"
		if path != "" {
			example = v.Type().Field(0).Tag.Get("yaml") + ": ..."
		}
		d.fail(at, path, "expected keys here, indented on the lines below (like %s), got %s", example, describe(node))
		return
	}
	fields, names := yamlFields(v.Type())
	for _, mv := range values {
		ktk := mv.Key.GetToken()
		if mv.Key.IsMergeKey() {
			d.fail(ktk, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		key := keyText(mv.Key)
		if special != nil && special(key, mv) {
			continue
		}
		child := join(path, key)
		i, ok := fields[key]
		if !ok {
			msg := "unknown field"
			if s := suggest(key, names); s != "" {
				msg += "; did you mean " + s + "?"
			} else {
				msg += "; known fields here: " + strings.Join(names, ", ")
			}
			d.fail(ktk, child, "%s", msg)
			continue
		}
		d.value(mv.Value, v.Field(i), child, ktk)
	}
}

// value decodes one field. at is its key, where errors point.
func (d *decoder) value(node ast.Node, v reflect.Value, path string, at *token.Token) {
	node = d.unwrap(node, at, path)
	if node == nil {
		return
	}
	if v.Kind() == reflect.Struct {
		d.mapping(node, v, path, at, nil)
		return
	}
	if node.Type() == ast.NullType {
		d.fail(at, path, "has no value; write one, or remove the key to keep the default")
		return
	}
	var err error
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		err = d.parsed(node, func(s string) (err error) { *p, err = ParseDuration(s); return })
	case *ByteSize:
		err = d.parsed(node, func(s string) (err error) { *p, err = ParseByteSize(s); return })
	case *Instances:
		err = d.parsed(node, func(s string) (err error) { *p, err = ParseInstances(s); return })
	case *string:
		*p, err = stringValue(node)
	case *int:
		*p, err = intValue(node)
	case *bool:
		b, ok := node.(*ast.BoolNode)
		if !ok {
			err = fmt.Errorf("%s is not true or false", describe(node))
		} else {
			*p = b.Value
		}
	case *[]string:
		d.list(node, p, path, at)
		return
	default:
		panic(fmt.Sprintf("configs: no YAML decoding for %s (field %s)", v.Type(), path))
	}
	if err != nil {
		d.fail(at, path, "%s", err.Error())
		return
	}
	d.record(path, at)
}

func (d *decoder) list(node ast.Node, p *[]string, path string, at *token.Token) {
	seq, ok := node.(*ast.SequenceNode)
	if !ok {
		d.fail(at, path, "%s is not a list; write [a, b] or one \"- item\" per line", describe(node))
		return
	}
	out := make([]string, 0, len(seq.Values))
	failed := false
	for i, item := range seq.Values {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		itk := item.GetToken()
		item = d.unwrap(item, itk, itemPath)
		if item == nil {
			failed = true
			continue
		}
		s, err := stringValue(item)
		if err != nil {
			d.fail(itk, itemPath, "%s", err.Error())
			failed = true
			continue
		}
		out = append(out, s)
	}
	if failed {
		return
	}
	*p = out
	d.record(path, at)
	if d.src != nil {
		for k := range d.src {
			if strings.HasPrefix(k, path+"[") {
				delete(d.src, k)
			}
		}
		for i, item := range seq.Values {
			d.record(fmt.Sprintf("%s[%d]", path, i), item.GetToken())
		}
	}
}

// parsed feeds the literal text of a scalar to parse: "25", "25s", "1e6" and
// "max" all reach the parser as written, quoted or not.
func (d *decoder) parsed(node ast.Node, parse func(string) error) error {
	s, ok := scalarText(node)
	if !ok {
		return fmt.Errorf("expected a single value, got %s", describe(node))
	}
	return parse(s)
}

// unwrap looks through anchors and tags; aliases are refused (nil result).
func (d *decoder) unwrap(node ast.Node, at *token.Token, path string) ast.Node {
	for {
		switch n := node.(type) {
		case *ast.AnchorNode:
			node = n.Value
		case *ast.TagNode:
			node = n.Value
		case *ast.AliasNode:
			d.fail(at, path, "aliases (*name) are not supported; write the value out")
			return nil
		default:
			return node
		}
	}
}

func (d *decoder) fail(at *token.Token, path, format string, args ...any) {
	e := &Error{File: d.file, Field: d.show(path), Msg: fmt.Sprintf(format, args...)}
	if at != nil {
		e.Line, e.Column = at.Position.Line, at.Position.Column
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) record(path string, at *token.Token) {
	if d.src == nil || at == nil {
		return
	}
	d.src[path] = Error{File: d.file, Line: at.Position.Line, Column: at.Position.Column, Field: d.show(path)}
}

func (d *decoder) show(path string) string {
	return strings.TrimSuffix(d.prefix+path, ".")
}

func mappingValues(node ast.Node) ([]*ast.MappingValueNode, bool) {
	switch n := node.(type) {
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	return nil, false
}

func stringValue(node ast.Node) (string, error) {
	switch n := node.(type) {
	case *ast.StringNode:
		return n.Value, nil
	case *ast.LiteralNode:
		return n.Value.Value, nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, nil
	case *ast.BoolNode:
		return "", fmt.Errorf("%s is a boolean; put it in quotes if you mean the text", n.GetToken().Value)
	}
	return "", fmt.Errorf("expected text, got %s", describe(node))
}

func intValue(node ast.Node) (int, error) {
	switch n := node.(type) {
	case *ast.IntegerNode:
		switch v := n.Value.(type) {
		case int64:
			return int(v), nil
		case uint64:
			if v <= uint64(^uint(0)>>1) {
				return int(v), nil
			}
		}
		return 0, fmt.Errorf("%s is too large", n.GetToken().Value)
	case *ast.StringNode:
		if _, err := strconv.Atoi(strings.TrimSpace(n.Value)); err == nil {
			return 0, fmt.Errorf("%q is quoted text; write the number without quotes", n.Value)
		}
	}
	return 0, fmt.Errorf("%s is not a whole number", describe(node))
}

// describe shows a node in an error message without dumping a whole section.
func describe(node ast.Node) string {
	switch n := node.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a section of keys"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	case *ast.StringNode:
		return strconv.Quote(n.Value)
	case *ast.LiteralNode:
		return strconv.Quote(n.Value.Value)
	}
	if s, ok := scalarText(node); ok {
		return s
	}
	return node.Type().String()
}

func scalarText(node ast.Node) (string, bool) {
	switch n := node.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

func keyText(k ast.MapKeyNode) string {
	var node ast.Node = k
	if mk, ok := k.(*ast.MappingKeyNode); ok && mk.Value != nil {
		node = mk.Value // the explicit form: "? port"
	}
	if s, ok := scalarText(node); ok {
		return s
	}
	return node.GetToken().Value
}

// yamlFields maps the yaml names of t's fields to their index, skipping
// yaml:"-"; names lists them in declaration order, for messages.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	idx := make(map[string]int, t.NumField())
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		idx[name] = i
		names = append(names, name)
	}
	return idx, names
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the known name closest to a mistyped key, if any is close.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func syntaxError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		e := &Error{File: name, Msg: "invalid YAML: " + ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
		return e
	}
	return &Error{File: name, Msg: "invalid YAML: " + err.Error()}
}
