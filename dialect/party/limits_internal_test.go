package party

import (
	"testing"
	"time"
)

// The per-connection create rate is crossed and recovered: a token comes
// back every 60/n seconds.
func TestCreateRateRecovers(t *testing.T) {
	var b bucket
	now := time.Now().UnixNano()
	for i := range 2 {
		if !b.take(2, now) {
			t.Fatalf("create %d refused within the rate", i)
		}
	}
	if b.take(2, now) {
		t.Fatal("3rd create in a minute allowed")
	}
	if b.take(2, now+int64(29*time.Second)) {
		t.Fatal("allowed before a token came back")
	}
	if !b.take(2, now+int64(31*time.Second)) {
		t.Fatal("refused after a token came back")
	}
}

// The state budget's count is the sum of the rooms' shares, and a share
// that would take it over is refused without changing it.
func TestStateBudget(t *testing.T) {
	b := stateBudget{max: 100}
	var x, y roomState
	if !b.resize(&x, 60) || !b.resize(&y, 40) {
		t.Fatal("refused within the budget")
	}
	if b.resize(&y, 41) {
		t.Fatal("allowed over the budget")
	}
	if y.counted != 40 || b.used.Load() != 100 {
		t.Fatalf("refusal changed the count: share %d, used %d", y.counted, b.used.Load())
	}
	if !b.resize(&x, 10) || !b.resize(&y, 90) {
		t.Fatal("refused after x shrank")
	}
	b.resize(&x, 0)
	b.resize(&y, 0)
	if b.used.Load() != 0 {
		t.Fatalf("used %d after every share went", b.used.Load())
	}
}
