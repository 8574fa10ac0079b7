// Package assemble is the program's wiring: which dialects the server
// speaks and which backplane they share, a single node's (in memory) or
// a cluster's (NATS, with --nats). main hands Build to the server
// (server.Config.Assemble); tests that run whole servers do the same
// (New). Nothing here runs after the server has started.
package assemble

import (
	"path/filepath"

	"partyline/backplane"
	"partyline/cluster"
	"partyline/dialect"
	"partyline/dialect/channels"
	"partyline/dialect/chat"
	"partyline/dialect/echo"
	"partyline/dialect/notify"
	"partyline/dialect/party"
	"partyline/dialect/presence"
	"partyline/dialect/rooms"
	"partyline/dialect/teams"
	"partyline/dialect/wsecho"
	"partyline/server"
)

// New is server.New with this package's wiring (unless cfg has its own).
func New(cfg server.Config) (*server.Server, error) {
	if cfg.Assemble == nil {
		cfg.Assemble = Build
	}
	return server.New(cfg)
}

// Build creates one instance of every dialect (the server routes
// "/"+Name() to each) and the backplane they share: a cluster node when
// cfg.NATSURL is set, which the server starts before the dialects and
// stops after them, else backplane.Local.
func Build(cfg *server.Config) ([]dialect.Dialect, backplane.Service) {
	core := presence.NewCore(cfg.Presence, cfg.JWT, cfg.DataDir, cfg.Logger) // shared by chat and presence
	cfg.Party.Logger = cfg.Logger
	cfg.Party.StoreMinFree = cfg.Presence.StoreMinFree
	if cfg.Party.Persist && cfg.NATSURL == "" && cfg.DataDir != "" {
		cfg.Party.PersistDir = filepath.Join(cfg.DataDir, "party")
	}
	p, t, c, r, n := party.New(cfg.Party), teams.New(cfg.Teams), channels.New(cfg.Channels), rooms.New(cfg.Rooms), notify.New(cfg.Notify)
	p2 := party.NewV2(cfg.Party)
	ch := chat.New(core)
	var bp backplane.Service = backplane.NewLocal(cfg.NodeID, cfg.Logger, 0)
	if cfg.NATSURL != "" {
		// Cluster mode: the dialects share rooms and counts through NATS.
		node := cluster.New(cluster.Config{URL: cfg.NATSURL, NodeID: cfg.NodeID, Lease: cfg.NodeLease, Logger: cfg.Logger})
		bp = node.Service()
		p.UseCluster(node.Cluster())
		p2.UseCluster(node.Cluster())
		t.UseCluster(node)
		c.UseCluster(node)
		r.UseCluster(node)
		n.UseCluster(node)
		ch.UseCluster(node) // and presence, through the core they share
	}
	return []dialect.Dialect{
		p,
		p2,
		t,
		c,
		echo.New(),
		r,
		n,
		ch,
		presence.New(core),
		wsecho.New(),
	}, bp
}
