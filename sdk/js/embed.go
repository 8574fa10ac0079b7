// Package sdkjs embeds the built JavaScript client SDK (dist/, the output
// of `npm run build` in this folder, committed) so that package web can
// serve it to browsers as ES modules at /sdk/.
package sdkjs

import "embed"

// Dist holds dist/*.js and dist/*.d.ts.
//
//go:embed dist/*.js dist/*.d.ts
var Dist embed.FS
