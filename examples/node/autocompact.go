package main

import (
	"strconv"
	"time"

	"github.com/kvstore/kvstore"
)

// autoCompaction is the node's --auto-compaction-mode and
// --auto-compaction-retention, as etcd's flags of those names, turned into
// kvstore.WithAutoCompaction's arguments.
type autoCompaction struct {
	mode      kvstore.AutoCompactionMode
	retention time.Duration // a count of revisions in revision mode
}

// parseAutoCompaction reads the two flags: periodic takes a duration with
// its unit ("5m", "1h"; etcd's bare number of hours is refused as
// ambiguous), revision a count of revisions, off nothing.
func parseAutoCompaction(mode, retention string) (autoCompaction, error) {
	switch mode {
	case "off":
		return autoCompaction{mode: kvstore.AutoCompactionOff}, nil
	case "periodic":
		d, err := time.ParseDuration(retention)
		if err != nil || d < kvstore.MinAutoCompactionRetention {
			return autoCompaction{}, usageError("--auto-compaction-retention %q: periodic mode wants a duration with its unit of at least %v, such as 5m or 1h", retention, kvstore.MinAutoCompactionRetention)
		}
		return autoCompaction{mode: kvstore.AutoCompactionPeriodic, retention: d}, nil
	case "revision":
		n, err := strconv.ParseInt(retention, 10, 64)
		if err != nil || n <= 0 {
			return autoCompaction{}, usageError("--auto-compaction-retention %q: revision mode wants a positive count of revisions", retention)
		}
		return autoCompaction{mode: kvstore.AutoCompactionRevision, retention: time.Duration(n)}, nil
	}
	return autoCompaction{}, usageError("--auto-compaction-mode %q: want periodic, revision or off", mode)
}
