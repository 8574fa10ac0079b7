package scenario

import (
	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"partyline/bench/internal/stats"
)

type hdrHist = hdr.Histogram

func newHdrHist() *hdrHist { return stats.NewHist() }
