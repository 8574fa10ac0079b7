package backplane

import "time"

// AfterSync calls fn with the result of Census.Sync(d), c being one of
// n's censuses, once c's local copy holds every write made anywhere
// before the call (read-your-writes for Remote). Never blocks: it syncs
// where Blocking runs, so on a single node (nobody else's writes to wait
// for) fn runs before AfterSync returns. It reports false, having done
// nothing, when the workers are all busy.
func AfterSync(n Node, c Census, d time.Duration, fn func(error)) bool {
	return Blocking(n, func() { fn(c.Sync(d)) })
}

// Blocking runs fn, which calls the blocking methods of n's censuses or
// names, where that costs an event loop nothing: at once on a single node
// (Local: they are in memory; fn runs before Blocking returns), else on
// one of n's workers (Node.Go). It reports false, having done nothing,
// when the workers are all busy.
func Blocking(n Node, fn func()) bool {
	if _, single := n.(*Local); single {
		fn()
		return true
	}
	return n.Go(fn)
}
