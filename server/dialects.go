package server

import (
	"partyline/auth"
	"partyline/dialect/channels"
	"partyline/dialect/notify"
	"partyline/dialect/party"
	"partyline/dialect/presence"
	"partyline/dialect/rooms"
	"partyline/dialect/teams"
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
