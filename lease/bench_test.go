package lease_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/kvstore/kvstore/lease"
)

const benchLeases = 100_000

func BenchmarkTableGrant(b *testing.B) {
	tab := lease.NewTable(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := tab.Grant(lease.ID(i+1), 60); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTableSetKeyLease(b *testing.B) {
	tab := lease.NewTable(1)
	for id := lease.ID(1); id <= 1000; id++ {
		mustGrant(b, tab, id, 60)
	}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("/registry/pods/default/pod-%06d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := tab.SetKeyLease(keys[i%len(keys)], lease.ID(i%1000+1)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpirerAdd(b *testing.B) {
	e := leader()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Add(lease.ID(i+1), 60, t0)
	}
}

// promoted100k returns an Expirer tracking benchLeases leases with TTLs
// spread over 1..1000 seconds.
func promoted100k() *lease.Expirer {
	leases := make([]lease.Lease, benchLeases)
	for i := range leases {
		leases[i] = lease.Lease{ID: lease.ID(i + 1), TTL: int64(i%1000 + 1)}
	}
	e := lease.NewExpirer(0)
	e.Promote(t0, leases, 0)
	return e
}

func BenchmarkExpirerRenew(b *testing.B) {
	e := promoted100k()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, err := e.Renew(lease.ID(i%benchLeases+1), t0.Add(time.Duration(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpirerRenewParallel(b *testing.B) {
	e := promoted100k()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			_, _, _ = e.Renew(lease.ID(i%benchLeases+1), t0)
		}
	})
}

// BenchmarkExpirerExpired100k measures reporting 100,000 due leases in one
// call; each iteration starts from a fresh Expirer.
func BenchmarkExpirerExpired100k(b *testing.B) {
	now := t0.Add(time.Hour)
	for b.Loop() {
		b.StopTimer()
		e := promoted100k()
		b.StartTimer()
		if ids := e.Expired(now, benchLeases); len(ids) != benchLeases {
			b.Fatalf("Expired returned %d leases", len(ids))
		}
	}
}

// BenchmarkExpirerExpiredBatch measures the steady state of an expiry loop:
// 500 revokes (a 500ms tick at 1,000/s) out of 100,000 due leases.
func BenchmarkExpirerExpiredBatch(b *testing.B) {
	e := promoted100k()
	now := t0.Add(time.Hour)
	for b.Loop() {
		ids := e.Expired(now, 500)
		for _, id := range ids {
			e.Remove(id)
		}
		if e.Len() == 0 {
			b.StopTimer()
			e = promoted100k()
			b.StartTimer()
		}
	}
}

func BenchmarkExpirerCheckpoints100k(b *testing.B) {
	e := promoted100k()
	for i := 0; b.Loop(); i++ {
		e.Checkpoints(t0.Add(time.Duration(i%500+1) * time.Second))
	}
}

func BenchmarkExpirerPromote100k(b *testing.B) {
	for b.Loop() {
		promoted100k()
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkBytesPerLease reports the memory one lease costs: in an
// Expirer (Add-grown), and in a Table without keys and with one key.
func BenchmarkBytesPerLease(b *testing.B) {
	keys := make([]string, benchLeases)
	for i := range keys {
		keys[i] = fmt.Sprintf("/registry/leases/%08d", i)
	}
	var expirerBytes, tableBytes, keyBytes float64
	for b.Loop() {
		base := heapInUse()
		e := leader()
		for i := range benchLeases {
			e.Add(lease.ID(i+1), 60, t0)
		}
		expirerBytes = float64(heapInUse()-base) / benchLeases
		runtime.KeepAlive(e)

		base = heapInUse()
		tab := lease.NewTable(1)
		for i := range benchLeases {
			_, _ = tab.Grant(lease.ID(i+1), 60)
		}
		withoutKeys := heapInUse()
		tableBytes = float64(withoutKeys-base) / benchLeases
		for i, k := range keys {
			_ = tab.SetKeyLease(k, lease.ID(i+1))
		}
		keyBytes = float64(heapInUse()-withoutKeys) / benchLeases
		runtime.KeepAlive(tab)
	}
	b.ReportMetric(expirerBytes, "expirer-B/lease")
	b.ReportMetric(tableBytes, "table-B/lease")
	b.ReportMetric(keyBytes, "table-B/key")
}

func BenchmarkSnapshot100k(b *testing.B) {
	tab := lease.NewTable(1)
	for i := range benchLeases {
		id := lease.ID(i + 1)
		_, _ = tab.Grant(id, 60)
		_ = tab.SetKeyLease(fmt.Sprintf("/registry/leases/%08d", i), id)
	}
	var buf bytes.Buffer
	b.Run("WriteTo", func(b *testing.B) {
		for b.Loop() {
			buf.Reset()
			_, _ = tab.WriteTo(&buf)
		}
		b.ReportMetric(float64(buf.Len())/benchLeases, "snapshot-B/lease")
	})
	b.Run("ReadFrom", func(b *testing.B) {
		data := bytes.Clone(buf.Bytes())
		restored := lease.NewTable(1)
		for b.Loop() {
			if _, err := restored.ReadFrom(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Hash", func(b *testing.B) {
		for b.Loop() {
			tab.Hash()
		}
	})
}
