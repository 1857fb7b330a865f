package logs

import (
	"context"
	"log/slog"
	"slices"
)

// UniqueKeys wraps h so that a logger's attributes keep each key once: a
// later With("component", "redis-adapter") replaces the "component" the
// logger had, in place, instead of writing both
// ("component=worker worker=0 pid=7 component=redis-adapter" becomes
// "component=redis-adapter worker=0 pid=7"). Packages add their own
// component to the logger they are given; the process's log reads as one.
// Attributes inside a group, and a record's own attributes, are left as
// they are.
func UniqueKeys(h slog.Handler) slog.Handler {
	if u, ok := h.(*uniqueKeys); ok {
		return u
	}
	return &uniqueKeys{base: h, inner: h}
}

type uniqueKeys struct {
	base  slog.Handler // without attrs
	attrs []slog.Attr  // the logger's attributes, one per key, in first-seen order
	inner slog.Handler // base.WithAttrs(attrs)
}

func (h *uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *uniqueKeys) Handle(ctx context.Context, r slog.Record) error { return h.inner.Handle(ctx, r) }

func (h *uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	merged := slices.Clone(h.attrs)
	for _, a := range as {
		if i := slices.IndexFunc(merged, func(m slog.Attr) bool { return m.Key == a.Key }); i >= 0 {
			merged[i] = a
		} else {
			merged = append(merged, a)
		}
	}
	return &uniqueKeys{base: h.base, attrs: merged, inner: h.base.WithAttrs(merged)}
}

func (h *uniqueKeys) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	g := h.inner.WithGroup(name)
	return &uniqueKeys{base: g, inner: g}
}
