package party

import "partyline/dialect"

// Both party dialects serve the rooms API (api.go), which package httpapi
// mounts at /api/rooms; party-v2 also answers GET /room/{code} on its
// WebSocket port (plain.go).
var _ dialect.RoomAPI = (*Dialect)(nil)
