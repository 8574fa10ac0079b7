package codec

import (
	"strconv"
	"testing"

	"github.com/gobwas/ws"
)

// BenchmarkDecoderNext decodes one masked text frame (unmasking in place
// and validating UTF-8), the per-message cost of every inbound message.
func BenchmarkDecoderNext(b *testing.B) {
	for _, size := range []int{64, 1024, 16384} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			frame := AppendMaskedFrame(nil, true, ws.OpText, payload, [4]byte{1, 2, 3, 4})
			buf := make([]byte, len(frame))
			var d Decoder
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				copy(buf, frame) // Next unmasks in place
				n, _, err := d.Next(buf)
				if err != nil || n != len(frame) {
					b.Fatalf("n %d err %v", n, err)
				}
			}
		})
	}
}
