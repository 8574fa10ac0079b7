package notify

// Cluster mode (--nats): a user's connections may be on any node.
//
//   - POST /api/notify on any node publishes the notification to the
//     user's subject; every node with connections of the user delivers it.
//   - POST /api/broadcast publishes once on the notify "all" subject; every
//     node delivers to all its /notify connections.
//   - The responses count connections across the cluster: this node's
//     (exact) plus the other nodes' counts in the census (pl_census, each
//     node's count written within a key-value round trip of a change).
//     Delivery on the other nodes is asynchronous: "connections" counts
//     the connections the notification was sent to, not receipts.

import (
	"partyline/backplane"
	"partyline/cluster"
	"partyline/routing"
)

const allRoom = "all" // the census room of every /notify connection

type clustered struct {
	n     *cluster.Node
	b     *cluster.Broker
	users *cluster.Census // per user
	all   *cluster.Census // every connection
}

// UseCluster puts the dialect in cluster mode on node n. Call before the
// server starts.
func (d *Dialect) UseCluster(n *cluster.Node) {
	d.cl = &clustered{n: n, b: n.Broker("notify", d.users), users: n.Census("notify"), all: n.Census("notifyall")}
	d.cl.b.Lost = d.ErrorFrame(cluster.LostText)
	d.broker = d.cl.b
	n.OnAll("notify", func(m backplane.Msg) {
		f := routing.NewRaw(m.Data)
		d.all.Range(func(r *routing.Room) bool {
			r.Broadcast(f, nil, false)
			return true
		})
		f.Release()
	})
}

// markUser brings the census of user key up to date.
func (d *Dialect) markUser(key string) {
	d.cl.users.Mark(key, func() int {
		if r := d.users.Get(key); r != nil {
			return r.Len()
		}
		return 0
	}, nil)
}

// markAll brings the census of all connections up to date.
func (d *Dialect) markAll() {
	d.cl.all.Mark(allRoom, func() int { return int(d.all.Members()) }, nil)
}

// notifyCluster delivers f to user key on every node and counts the
// connections it was sent to. Blocks (HTTP goroutine).
func (d *Dialect) notifyCluster(key string, f *routing.Frame) int {
	n := d.cl.b.PublishName(key, f, false, nil)
	remote, err := d.cl.users.RemoteTotal(key)
	if err != nil {
		return n
	}
	return n + remote
}

// broadcastCluster delivers f to every /notify connection of every node
// and counts them. Blocks (HTTP goroutine).
func (d *Dialect) broadcastCluster(f *routing.Frame) int {
	n := 0
	d.all.Range(func(r *routing.Room) bool {
		n += r.Broadcast(f, nil, false)
		return true
	})
	d.cl.n.PublishAll("notify", f, nil)
	remote, err := d.cl.all.RemoteTotal(allRoom)
	if err != nil {
		return n
	}
	return n + remote
}
