package redisadapter

// TapMessage describes a message the adapter received and decoded.
type TapMessage struct {
	Channel string
	Payload []byte
	Kind    int
	Event   string // the event name of broadcasts and server-side emits
	Sharded bool
}

// SetTap makes a call fn with every message of another sender that a
// decodes (tests capture Node's messages as fuzz seeds with it).
func SetTap(a *Adapter, fn func(TapMessage)) {
	f := func(channel string, payload []byte, m message) {
		tm := TapMessage{Channel: channel, Payload: append([]byte(nil), payload...), Kind: int(m.Kind), Sharded: a.opts.Sharded}
		if len(m.Data) > 0 {
			tm.Event, _ = m.Data[0].(string)
		}
		fn(tm)
	}
	a.tap.Store(&f)
}
