package cluster

import (
	"github.com/nats-io/nats.go"

	"partyline/backplane"
	"partyline/routing"
)

// Handle registers fn for directed messages of kind (the Pl-Kind header)
// sent to this node with Direct. fn runs on a NATS goroutine. Call before
// Start.
func (n *Node) Handle(kind string, fn func(m backplane.Msg)) {
	n.mu.Lock()
	n.direct[kind] = fn
	n.mu.Unlock()
}

// Direct sends the frame f (nil for none) with headers hdr to node,
// whose handler for kind receives it. Never blocks.
func (n *Node) Direct(node, kind string, h backplane.Header, f *routing.Frame) {
	hdr := nats.Header{}
	for k, v := range h {
		hdr[k] = v
	}
	hdr.Set(HdrKind, kind)
	if f != nil {
		n.pub.frame(nodeSubject(node), f, false, hdr)
		return
	}
	n.pub.raw(nodeSubject(node), nil, hdr)
}

func (n *Node) onDirect(m *nats.Msg) {
	n.mu.Lock()
	fn := n.direct[m.Header.Get(HdrKind)]
	n.mu.Unlock()
	if fn != nil {
		fn(msgOf(m))
	}
}
