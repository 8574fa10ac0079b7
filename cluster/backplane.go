package cluster

import (
	"partyline/backplane"
	"partyline/routing"
	"partyline/store"
)

// Backplane is the node as the dialects see it: the NATS implementation
// of backplane.Node.
func (n *Node) Backplane() backplane.Node { return plane{n} }

// plane adapts Node's constructors to the backplane's interfaces.
type plane struct{ *Node }

func (p plane) Bus(ns string, hub *routing.Hub) backplane.Bus { return p.Node.Broker(ns, hub) }
func (p plane) Census(ns string) backplane.Census             { return p.Node.Census(ns) }
func (p plane) Names(ns string) backplane.Names               { return p.Node.Names(ns) }

func (p plane) OpenStore(dir string, opts store.PebbleOptions) (store.Store, error) {
	cs, err := p.Node.OpenChatStore(dir, opts)
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// SetOnReap implements backplane.Census.
func (c *Census) SetOnReap(fn func(room string, before, after int)) { c.OnReap = fn }

// SetOnChange implements backplane.Census.
func (c *Census) SetOnChange(fn func(room string)) { c.OnChange = fn }

var (
	_ backplane.Bus    = (*Broker)(nil)
	_ backplane.Census = (*Census)(nil)
	_ backplane.Names  = (*Names)(nil)
)

// Service returns the node as the server runs it (backplane.Service).
func (n *Node) Service() backplane.Service { return plane{n} }

var _ backplane.Service = plane{}
