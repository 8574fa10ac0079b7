package notify

// What notify shares with other nodes, through the backplane (package
// backplane): one code path, two implementations. On a single node
// (backplane.Local) every connection is here: the censuses count nobody
// elsewhere and PublishAll reaches nobody. In a cluster (NATS) a user's
// connections may be on any node:
//
//   - POST /api/notify on any node publishes the notification to the
//     user's room on every node (Bus.PublishName); every node with
//     connections of the user delivers it.
//   - POST /api/broadcast reaches this node's /notify connections and,
//     with PublishAll, every other node's.
//   - The responses count connections on every node: this node's (exact)
//     plus the other nodes' counts in the censuses (each node's count
//     written within a key-value round trip of a change). Delivery on the
//     other nodes is asynchronous: "connections" counts the connections
//     the notification was sent to, not receipts.

import (
	"partyline/backplane"
	"partyline/routing"
)

const allRoom = "all" // the census key of every /notify connection

// UseBackplane shares the users through bp (New starts with a single-node
// one). Call before the server starts.
func (d *Dialect) UseBackplane(bp backplane.Node) {
	d.bp, d.bus = bp, bp.Bus("notify", d.users)
	d.userCensus, d.allCensus = bp.Census("notify"), bp.Census("notifyall")
	d.bus.SetLost(d.ErrorFrame(backplane.LostText))
	bp.OnAll("notify", func(m backplane.Msg) {
		f := routing.NewRaw(m.Data)
		d.broadcastLocal(f)
		f.Release()
	})
}

// markUser brings the census of user key up to date.
func (d *Dialect) markUser(key string) {
	d.userCensus.Mark(key, func() int {
		if r := d.users.Get(key); r != nil {
			return r.Len()
		}
		return 0
	}, nil)
}

// markAll brings the census of all connections up to date.
func (d *Dialect) markAll() {
	d.allCensus.Mark(allRoom, func() int { return int(d.all.Members()) }, nil)
}

// broadcastLocal sends f to every /notify connection of this node and
// returns how many it was queued for.
func (d *Dialect) broadcastLocal(f *routing.Frame) int {
	n := 0
	d.all.Range(func(r *routing.Room) bool {
		n += r.Broadcast(f, nil, false)
		return true
	})
	return n
}

// remote is key's count on the other nodes (0 if the census cannot be
// read). Blocks in a cluster.
func remote(c backplane.Census, key string) int {
	n, err := c.RemoteTotal(key)
	if err != nil {
		return 0
	}
	return n
}
