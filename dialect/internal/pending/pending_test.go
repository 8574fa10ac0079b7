package pending

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"partyline/codec"
)

func TestOpFinishThenCancel(t *testing.T) {
	var o Op
	undone := 0
	if !o.Finish(func() { undone++ }) {
		t.Fatal("Finish before Cancel reported the session closed")
	}
	undo := o.Cancel()
	if undo == nil {
		t.Fatal("Cancel after Finish returned no undo: the worker's changes would stay")
	}
	undo()
	if undone != 1 {
		t.Fatalf("undo ran %d times, want 1", undone)
	}
}

func TestOpCancelThenFinish(t *testing.T) {
	var o Op
	if undo := o.Cancel(); undo != nil {
		t.Fatal("Cancel before Finish returned an undo: the worker would undo a second time")
	}
	if o.Finish(func() { t.Fatal("undo handed to Finish must not run here") }) {
		t.Fatal("Finish after Cancel reported the session live: its follow-up would run on a closed connection")
	}
}

func TestOpFinishWithoutUndo(t *testing.T) {
	var o Op
	if !o.Finish(nil) {
		t.Fatal("Finish(nil) reported the session closed")
	}
	if undo := o.Cancel(); undo != nil {
		t.Fatal("Cancel returned an undo where Finish gave none")
	}
}

// TestOpRace: whichever of Finish and Cancel comes first, exactly one side
// is told to undo.
func TestOpRace(t *testing.T) {
	for i := 0; i < 1000; i++ {
		var o Op
		undos := 0
		var mu sync.Mutex
		undo := func() { mu.Lock(); undos++; mu.Unlock() }
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if !o.Finish(undo) {
				undo() // the worker undoes itself
			}
		}()
		go func() {
			defer wg.Done()
			if u := o.Cancel(); u != nil {
				u()
			}
		}()
		wg.Wait()
		if undos != 1 {
			t.Fatalf("round %d: undo ran %d times, want exactly 1", i, undos)
		}
	}
}

type replayed struct {
	kind    codec.Kind
	payload string
}

func TestGateOpenReplaysInOrder(t *testing.T) {
	var g Gate
	if g.Busy() {
		t.Fatal("a new gate is busy")
	}
	g.Close()
	if !g.Busy() {
		t.Fatal("Close did not make the gate busy")
	}
	buf := []byte("first")
	if !g.Hold(codec.KindText, buf) || !g.Hold(codec.KindBinary, []byte("second")) || !g.Hold(codec.KindText, []byte("third")) {
		t.Fatal("Hold refused on an almost empty gate")
	}
	copy(buf, "XXXXX") // the payload is valid only during OnMessage: Hold must have copied it
	var got []replayed
	g.Open(func(kind codec.Kind, payload []byte) { got = append(got, replayed{kind, string(payload)}) })
	want := []replayed{{codec.KindText, "first"}, {codec.KindBinary, "second"}, {codec.KindText, "third"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if g.Busy() || len(g.q) != 0 || g.bytes != 0 {
		t.Fatalf("after Open: busy %v, %d held, %d bytes; want idle and empty", g.Busy(), len(g.q), g.bytes)
	}
}

// TestGateOpenStopsAtNextOperation: a replayed message that starts another
// operation leaves the rest held, for the next Open.
func TestGateOpenStopsAtNextOperation(t *testing.T) {
	var g Gate
	g.Close()
	for _, p := range []string{"a", "op", "b", "c"} {
		g.Hold(codec.KindText, []byte(p))
	}
	var got []string
	replay := func(_ codec.Kind, payload []byte) {
		got = append(got, string(payload))
		if string(payload) == "op" {
			g.Close()
		}
	}
	g.Open(replay)
	if strings.Join(got, ",") != "a,op" || !g.Busy() || len(g.q) != 2 || g.bytes != 2 {
		t.Fatalf("first Open replayed %q (busy %v, %d held, %d bytes); want a,op then busy with b and c held (2 bytes)", got, g.Busy(), len(g.q), g.bytes)
	}
	g.Open(replay)
	if strings.Join(got, ",") != "a,op,b,c" || g.Busy() || len(g.q) != 0 || g.bytes != 0 {
		t.Fatalf("second Open: replayed %q (busy %v, %d held); want a,op,b,c and an idle gate", got, g.Busy(), len(g.q))
	}
}

// TestGateLimits crosses both bounds: the count and the bytes.
func TestGateLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // bytes per message
		fits int // messages held before the first refusal
	}{
		{"count", 1, MaxHeld},
		{"empty messages count too", 0, MaxHeld},
		{"bytes", MaxHeldBytes / 8, 8},
		{"one message of the whole budget", MaxHeldBytes, 1},
		{"one message over the budget", MaxHeldBytes + 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gate
			g.Close()
			p := bytes.Repeat([]byte{'x'}, tc.size)
			n := 0
			for n <= MaxHeld && g.Hold(codec.KindText, p) {
				n++
			}
			if n != tc.fits {
				t.Fatalf("held %d messages of %d bytes, want %d", n, tc.size, tc.fits)
			}
			// Replaying frees the budget.
			g.Open(func(codec.Kind, []byte) {})
			g.Close()
			if tc.fits > 0 && !g.Hold(codec.KindText, p) {
				t.Fatal("Hold refused after Open emptied the gate")
			}
		})
	}
}

type closer struct {
	code   uint16
	reason string
	n      int
}

func (c *closer) Close(code uint16, reason string) { c.code, c.reason = code, reason; c.n++ }

func TestGateDefer(t *testing.T) {
	var g Gate
	var c closer
	if g.Defer(&c, codec.KindText, []byte("x"), "busy") {
		t.Fatal("Defer took a message while no operation is in flight")
	}
	g.Close()
	for i := 0; i < MaxHeld; i++ {
		if !g.Defer(&c, codec.KindText, []byte("x"), "busy") {
			t.Fatalf("message %d: Defer let it through while busy", i)
		}
	}
	if c.n != 0 {
		t.Fatalf("closed after %d messages, below the limit", MaxHeld)
	}
	if !g.Defer(&c, codec.KindText, []byte("x"), "too many messages while busy") {
		t.Fatal("Defer let a message through on a full gate")
	}
	if c.n != 1 || c.code != 1008 || c.reason != "too many messages while busy" {
		t.Fatalf("full gate: closed %d times with %d %q, want once with 1008 and the reason given", c.n, c.code, c.reason)
	}
	if len(g.q) != MaxHeld {
		t.Fatalf("%d held, want %d: the refused message must not be kept", len(g.q), MaxHeld)
	}
}
