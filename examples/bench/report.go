package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Status of a workload.
const (
	statusOK          = "ok"
	statusUnsupported = "unsupported"
	statusError       = "error"
)

// workloadResult is one row of the report.
type workloadResult struct {
	Workload string    `json:"workload"`
	Node     string    `json:"node"` // leader or follower
	Workers  int       `json:"workers"`
	Status   string    `json:"status"`
	Error    string    `json:"error,omitempty"`
	Runs     []figures `json:"runs,omitempty"`
	Median   *figures  `json:"median,omitempty"`
}

type report struct {
	Setup   string           `json:"setup"`
	Results []workloadResult `json:"results"`
}

func newReport(c *config) *report { return &report{Setup: setup(c)} }

func (r *report) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	width := len("WORKLOAD")
	for _, res := range r.Results {
		width = max(width, len(res.Workload))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", r.Setup)
	row := func(cells ...string) {
		fmt.Fprintf(&b, "%-*s  %-8s  %7s  %4s  %9s  %10s  %8s  %8s  %8s  %9s  %6s\n", width,
			cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7], cells[8], cells[9], cells[10])
	}
	row("WORKLOAD", "NODE", "WORKERS", "RUNS", "OPS", "OPS/S", "P50 ms", "P99 ms", "P99.9 ms", "ALLOCS/OP", "B/OP")
	for _, res := range r.Results {
		if res.Median == nil {
			fmt.Fprintf(&b, "%-*s  %-8s  %7d  %s: %s\n", width, res.Workload, res.Node, res.Workers, res.Status, res.Error)
			continue
		}
		m := res.Median
		row(res.Workload, res.Node, strconv.Itoa(res.Workers), strconv.Itoa(len(res.Runs)),
			commas(m.Ops), commas(m.OpsPerSec), ms(m.P50), ms(m.P99), ms(m.P999),
			strconv.FormatFloat(m.AllocsPerOp, 'f', 1, 64), commas(m.BytesPerOp))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms formats d in milliseconds, to 0.1 µs.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 4, 64)
}

// commas formats x rounded to an integer, with thousands separators.
func commas(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
