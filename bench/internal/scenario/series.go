package scenario

import (
	"bufio"
	"fmt"
	"os"
	"slices"
)

// writeSeries writes a window's sampled deliveries as CSV: milliseconds
// since the window started, latency in microseconds, ordered by time.
func writeSeries(path string, w windowResult) error {
	s := slices.Clone(w.series)
	slices.SortFunc(s, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "t_ms,latency_us")
	for _, p := range s {
		fmt.Fprintf(bw, "%.3f,%.1f\n", float64(p[0]-w.start)/1e6, float64(p[1])/1e3)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
