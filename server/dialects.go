package server

import (
	"path/filepath"

	"partyline/auth"
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
)

// Dialects holds every dialect's settings; it is embedded in Config.
type Dialects struct {
	Party    party.Config
	Teams    teams.Config
	Channels channels.Config
	Notify   notify.Config
	JWT      auth.Config     // chat and presence tokens
	Presence presence.Config // chat and presence: auth timeout, grace, store workers, subscriptions
	Rooms    rooms.Config
}

func dialectDefaults() Dialects {
	return Dialects{
		Party:    party.Defaults(),
		Teams:    teams.Defaults(),
		Channels: channels.Defaults(),
		Notify:   notify.Defaults(),
		JWT:      auth.Defaults(),
		Presence: presence.Defaults(),
		Rooms:    rooms.Defaults(),
	}
}

func (d *Dialects) validate() error {
	for _, v := range []interface{ Validate() error }{&d.Party, &d.Teams, &d.Channels, &d.Notify, &d.JWT, &d.Presence, &d.Rooms} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// buildDialects creates one instance of every dialect (the registry routes
// "/"+Name() to each) and, in cluster mode, the cluster node they share,
// which the server starts before them and stops after them.
func buildDialects(cfg *Config) ([]dialect.Dialect, *cluster.Node) {
	core := presence.NewCore(cfg.Presence, cfg.JWT, cfg.DataDir, cfg.Logger) // shared by chat and presence
	cfg.Party.Logger = cfg.Logger
	cfg.Party.StoreMinFree = cfg.Presence.StoreMinFree
	if cfg.Party.Persist && cfg.NATSURL == "" && cfg.DataDir != "" {
		cfg.Party.PersistDir = filepath.Join(cfg.DataDir, "party")
	}
	p, t, c, r, n := party.New(cfg.Party), teams.New(cfg.Teams), channels.New(cfg.Channels), rooms.New(cfg.Rooms), notify.New(cfg.Notify)
	p2 := party.NewV2(cfg.Party)
	ch := chat.New(core)
	var node *cluster.Node
	if cfg.NATSURL != "" {
		// Cluster mode: the dialects share rooms and counts through NATS.
		node = cluster.New(cluster.Config{URL: cfg.NATSURL, NodeID: cfg.NodeID, Lease: cfg.NodeLease, Logger: cfg.Logger})
		p.UseCluster(node)
		p2.UseCluster(node)
		t.UseBackplane(node.Backplane())
		c.UseBackplane(node.Backplane())
		r.UseCluster(node)
		n.UseBackplane(node.Backplane())
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
	}, node
}
