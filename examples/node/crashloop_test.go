package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash loop (issue #21): three member processes under concurrent
// writers; each round one member is killed with SIGKILL and restarted from
// its data dir with the same flags, until it serves again. At the end
// every member holds every acknowledged write, and all agree on the
// revision and on the hash of the store there.
//
// The test keeps a killed member's listening sockets (so that no port is
// picked twice), so connections to it hang until it restarts and accepts
// them, as to a crashed host, instead of being refused: a write forwarded
// to a killed leader that stays down answers 504 after the API's 5 s
// request timeout, and the writers' figures include that wait.

const (
	// crashLoopRoundsEnv sets the number of rounds per log store (a soak:
	// KVSTORE_CRASHLOOP_ROUNDS=100); crashLoopSeedEnv fixes the seed that
	// picks victims and the writers' members, which the test logs.
	crashLoopRoundsEnv = "KVSTORE_CRASHLOOP_ROUNDS"
	crashLoopSeedEnv   = "KVSTORE_CRASHLOOP_SEED"
	// crashLoopCIRounds is the number of rounds in a plain go test run.
	crashLoopCIRounds = 4
	// crashLoopWriters PUT distinct keys concurrently.
	crashLoopWriters = 3
	// crashLoopRoundAcks is how many writes must be acknowledged between
	// two kills, so that every kill lands under load. A soak waits for
	// crashLoopSoakRoundAcks, so that its 100 rounds write past kvstore's
	// snapshot threshold (8,192 entries) and raft's trailing logs (10,240):
	// members take snapshots, compact their logs and restart from them.
	crashLoopRoundAcks     = 20
	crashLoopSoakRoundAcks = 150
	// crashLoopRestartAttempts is how often a member that exits instead of
	// serving is started again, to tell a persistent failure (issue #21's
	// refused data dir) from a passing one, before the test fails.
	crashLoopRestartAttempts = 3
)

// TestProcessesCrashLoop runs the crash loop on each log store.
func TestProcessesCrashLoop(t *testing.T) {
	bin := nodeBinary(t)
	rounds := envUint(t, crashLoopRoundsEnv, crashLoopCIRounds)
	seed := envUint(t, crashLoopSeedEnv, uint64(time.Now().UnixNano()))
	acks := crashLoopRoundAcks
	if os.Getenv(crashLoopRoundsEnv) != "" {
		acks = crashLoopSoakRoundAcks
	}
	for _, store := range []string{"wal", "bolt"} {
		t.Run(store, func(t *testing.T) { runCrashLoop(t, bin, store, int(rounds), acks, seed) })
	}
}

// envUint reads a positive integer from the environment, def if unset.
func envUint(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func runCrashLoop(t *testing.T, bin, store string, rounds, acksPerRound int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	var procs []*proc
	var peers []string
	for _, id := range []string{"n1", "n2", "n3"} {
		p := newProc(t, bin, id, "--log-store", store)
		procs = append(procs, p)
		peers = append(peers, id+"="+p.peerAddr())
	}
	// Every start, the first and each restart, has the same flags, as a
	// supervisor would give them (--initial-cluster is ignored once the
	// data dir exists).
	flags := []string{"--initial-cluster", strings.Join(peers, ",")}
	for _, p := range procs {
		p.start(flags...)
	}
	for _, p := range procs {
		waitServing(t, procs, p)
		checkLogStoreFiles(t, p, store)
	}

	log := newWriteLog()
	rep := &crashLoopReport{store: store, seed: seed}
	defer rep.log(t, log) // after the writers stop (deferred below), even when the test fails
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	stopWriters := startWriters(procs, client, log, seed)
	defer stopWriters()

	for round := 1; round <= rounds; round++ {
		log.round.Store(int64(round))
		log.waitAcks(t, procs, acksPerRound)
		leader := leaderProcess(t, procs)
		victim := procs[rng.IntN(len(procs))]
		if round%3 == 1 { // rounds 1, 4, 7, ...: at least a third of the kills hit the leader
			victim = leader
		}
		wasLeader := victim == leader
		atOnce := rng.IntN(2) == 0 // else the others serve without it first
		victim.kill()
		rep.rounds++
		if wasLeader {
			rep.leaderKills++
		}
		if !atOnce {
			log.waitAcks(t, procs, crashLoopRoundAcks)
		}
		began := time.Now()
		restartMember(t, procs, victim, flags, rep)
		took := time.Since(began)
		rep.slowestRestart = max(rep.slowestRestart, took)
		t.Logf("round %d: killed %s%s, restarted %s, serving after %v; %d writes acknowledged so far",
			round, victim.id, map[bool]string{true: " (leader)", false: ""}[wasLeader],
			map[bool]string{true: "at once", false: "after the others served on"}[atOnce], took.Round(time.Millisecond), log.ackedCount())
	}
	stopWriters()

	for _, p := range procs {
		waitServing(t, procs, p)
	}
	rev := convergedRevision(t, procs)
	var want uint32
	agree := true
	for i, p := range procs {
		var h hashResponse
		if code := p.do("GET", fmt.Sprint("/v1/hash?rev=", rev), "", &h); code != http.StatusOK {
			t.Fatalf("hash on %s at %d: status %d", p.id, rev, code)
		}
		if i == 0 {
			want = h.Hash
		} else if h.Hash != want {
			agree = false
			t.Errorf("%s's hash at revision %d is %x, %s's %x: the members diverged", p.id, rev, h.Hash, procs[0].id, want)
		}
	}
	rep.revision, rep.hash, rep.hashesAgree = rev, want, agree
	rep.checkWrites(t, procs, log)
}

// checkLogStoreFiles checks that --log-store reached kvstore: the data dir
// holds that store's files and not the other's (storage.go's layout).
func checkLogStoreFiles(t *testing.T, p *proc, store string) {
	t.Helper()
	wal, bolt := filepath.Join(p.dir, "raft", "wal"), filepath.Join(p.dir, "raft", "raft.db")
	want, unwanted := wal, bolt
	if store == "bolt" {
		want, unwanted = bolt, wal
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("%s --log-store %s: %v", p.id, store, err)
	}
	if _, err := os.Stat(unwanted); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s --log-store %s: %s exists (%v)", p.id, store, unwanted, err)
	}
}

// exitedOnItsOwn reports whether p's process has ended without the test
// killing it, and if so forgets the process (kill then has nothing to do).
func (p *proc) exitedOnItsOwn() (bool, error) {
	if p.cmd == nil || p.down.Load() {
		return false, nil
	}
	select {
	case err := <-p.exited:
		p.cmd = nil
		return true, err
	default:
		return false, nil
	}
}

// checkRunning fails the test, with the member's log, if a member the test
// did not kill has exited.
func checkRunning(t *testing.T, procs []*proc) {
	t.Helper()
	for _, p := range procs {
		if exited, err := p.exitedOnItsOwn(); exited {
			t.Fatalf("%s exited on its own (%v); log:\n%s", p.id, err, p.logText())
		}
	}
}

// waitServing waits until p's /healthz is 200 (a linearizable read
// succeeded), failing the test with p's log if it does not within
// processTimeout, and if any member exits meanwhile.
func waitServing(t *testing.T, procs []*proc, p *proc) {
	t.Helper()
	deadline := time.Now().Add(processTimeout)
	for !p.healthy() {
		checkRunning(t, procs)
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve within %v; log:\n%s", p.id, processTimeout, p.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restartMember starts the killed member p again with flags and waits
// until it serves. A member that exits instead is started again, up to
// crashLoopRestartAttempts times in all, so that the failure says whether
// it persists; then the test fails with every attempt's log.
func restartMember(t *testing.T, procs []*proc, p *proc, flags []string, rep *crashLoopReport) {
	t.Helper()
	var failures []string
	for attempt := 1; attempt <= crashLoopRestartAttempts; attempt++ {
		p.start(flags...)
		deadline := time.Now().Add(processTimeout)
		for !p.healthy() {
			if exited, err := p.exitedOnItsOwn(); exited {
				failures = append(failures, fmt.Sprintf("attempt %d: %s exited (%v); log:\n%s", attempt, p.id, err, p.logText()))
				break
			}
			checkRunning(t, procs)
			if time.Now().After(deadline) {
				t.Fatalf("restarted %s did not serve within %v; log:\n%s", p.id, processTimeout, p.logText())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(failures) < attempt { // it serves
			if strings.Contains(p.logText(), "restored from snapshot") { // raft's message
				rep.snapshotRestarts++
			}
			break
		}
	}
	if len(failures) > 0 {
		rep.failedRestarts++
		t.Fatalf("%s failed to restart from its data dir (%d of %d attempts):\n%s",
			p.id, len(failures), crashLoopRestartAttempts, strings.Join(failures, "\n"))
	}
}

// convergedRevision waits until every member reports the same revision
// (local state, /v1/status) and returns it. The writers have stopped, so
// the members converge on the last committed write.
func convergedRevision(t *testing.T, procs []*proc) int64 {
	t.Helper()
	var revs []int64
	eventuallyProc(t, "the members to reach the same revision", func() bool {
		revs = revs[:0]
		for _, p := range procs {
			revs = append(revs, p.status().Revision)
		}
		return revs[0] > 1 && slices.Min(revs) == slices.Max(revs)
	})
	return revs[0]
}

// crashLoopValue is the value written to key: a member that holds key with
// any other value holds a corrupt write.
func crashLoopValue(key string) string { return "v:" + key }

// writeLog is what the writers saw. Safe for concurrent use.
type writeLog struct {
	// round is the crash-loop round under way, for the report.
	round atomic.Int64

	mu       sync.Mutex
	acked    map[string]bool // keys whose PUT was answered 2xx
	attempts int
	// errors counts the failed attempts by HTTP status and code, or by
	// why no answer came.
	errors map[string]int
	// lastAck is when the latest acknowledged write was answered; maxGap
	// the longest time between two acknowledgements, ending in maxGapRound.
	lastAck     time.Time
	maxGap      time.Duration
	maxGapRound int64
	// maxFailRun is the longest run of failed attempts by one writer,
	// lasting maxFailTime.
	maxFailRun  int
	maxFailTime time.Duration
}

func newWriteLog() *writeLog {
	return &writeLog{acked: map[string]bool{}, errors: map[string]int{}, lastAck: time.Now()}
}

func (l *writeLog) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcks waits until n more writes have been acknowledged.
func (l *writeLog) waitAcks(t *testing.T, procs []*proc, n int) {
	t.Helper()
	want := l.ackedCount() + n
	eventuallyProc(t, fmt.Sprintf("%d more acknowledged writes", n), func() bool {
		checkRunning(t, procs)
		return l.ackedCount() >= want
	})
}

// ack records an acknowledged write answered at now.
func (l *writeLog) ack(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts++
	l.acked[key] = true
	if gap := now.Sub(l.lastAck); gap > l.maxGap {
		l.maxGap, l.maxGapRound = gap, l.round.Load()
	}
	l.lastAck = now
}

// fail records a failed attempt.
func (l *writeLog) fail(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts++
	l.errors[why]++
}

// failRun records that one writer's run of n failed attempts lasted d.
func (l *writeLog) failRun(n int, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > l.maxFailRun {
		l.maxFailRun, l.maxFailTime = n, d
	}
}

// stopped closes the log when the writers have stopped: the time since
// the last acknowledgement counts as a gap too.
func (l *writeLog) stopped(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gap := now.Sub(l.lastAck); gap > l.maxGap {
		l.maxGap, l.maxGapRound = gap, l.round.Load()
	}
}

// startWriters starts crashLoopWriters goroutines, each putting its own
// keys (w/<writer>/<seq>) through members picked at random among those
// the test has not killed, and recording each answer in log. The returned
// function stops them and waits for them; it may be called again.
func startWriters(procs []*proc, client *http.Client, log *writeLog, seed uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range crashLoopWriters {
		rng := rand.New(rand.NewPCG(seed, uint64(w)+1))
		wg.Go(func() {
			var failRun int
			var failedSince time.Time
			endRun := func(now time.Time) {
				if failRun > 0 {
					log.failRun(failRun, now.Sub(failedSince))
				}
				failRun = 0
			}
			defer func() { endRun(time.Now()) }()
			for seq := 0; ; seq++ {
				select {
				case <-done:
					return
				default:
				}
				var up []*proc
				for _, p := range procs {
					if !p.down.Load() {
						up = append(up, p)
					}
				}
				p := up[rng.IntN(len(up))] // one member at most is down
				key := fmt.Sprintf("w/%d/%07d", w, seq)
				start := time.Now()
				why := crashLoopPut(client, p, key)
				now := time.Now()
				if why == "" {
					log.ack(key, now)
					endRun(now)
					continue
				}
				log.fail(why)
				if failRun == 0 {
					failedSince = start
				}
				failRun++
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			log.stopped(time.Now())
		})
	}
}

// crashLoopPut puts key through p and returns "" if the write was
// acknowledged (2xx), else what came back: the status and the error code,
// or why no answer came. Any non-2xx is a write not acknowledged, which
// may or may not have committed (outcome_unknown, timeout).
func crashLoopPut(client *http.Client, p *proc, key string) (why string) {
	req, err := http.NewRequest("PUT", p.url()+"/v1/kv/"+key, strings.NewReader(crashLoopValue(key)))
	if err != nil {
		panic(err) // the URL is ours
	}
	resp, err := client.Do(req)
	if err != nil {
		return "no answer: " + noAnswerReason(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, resp.Body)
		return ""
	}
	var e errorBody
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code == "" {
		return fmt.Sprintf("%d (no JSON error body)", resp.StatusCode)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, e.Code)
}

// noAnswerReason names why a request got no HTTP answer, coarsely enough
// to be counted.
func noAnswerReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "client timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "other"
}

// crashLoopReport collects the figures the test reports.
type crashLoopReport struct {
	store          string
	seed           uint64
	rounds         int
	leaderKills    int
	failedRestarts int
	slowestRestart time.Duration
	// snapshotRestarts counts restarts that restored a raft snapshot.
	snapshotRestarts int
	// Filled in by the final checks.
	revision        int64
	hash            uint32
	hashesAgree     bool
	checked         bool
	lost            int
	unacknowledged  int // writes that committed without an acknowledgement
	membersReadBack int
}

// checkWrites reads every writer key through each member with linearizable
// reads: every acknowledged write must be there with its value, and no key
// may hold another value.
func (r *crashLoopReport) checkWrites(t *testing.T, procs []*proc, log *writeLog) {
	t.Helper()
	log.mu.Lock()
	acked := maps.Clone(log.acked)
	log.mu.Unlock()
	lost := map[string]bool{}
	for _, p := range procs {
		kvs := readPrefix(t, p, "w/")
		var missing []string
		for key := range acked {
			if _, ok := kvs[key]; !ok {
				missing = append(missing, key)
				lost[key] = true
			}
		}
		unacknowledged := 0
		for key, value := range kvs {
			if value != crashLoopValue(key) {
				t.Errorf("%s holds %s = %q, want %q", p.id, key, value, crashLoopValue(key))
			}
			if !acked[key] {
				unacknowledged++
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			t.Errorf("%s lost %d acknowledged writes: %s", p.id, len(missing), strings.Join(missing[:min(len(missing), 10)], ", "))
		}
		r.unacknowledged = max(r.unacknowledged, unacknowledged)
		r.membersReadBack++
	}
	r.lost, r.checked = len(lost), true
}

// readPrefix reads every key under prefix through p, in pages at one
// revision (the first page's, a linearizable read).
func readPrefix(t *testing.T, p *proc, prefix string) map[string]string {
	t.Helper()
	kvs := map[string]string{}
	var rev int64
	for from := prefix; ; {
		path := "/v1/kv/" + url.PathEscape(from) + "?from_key=1&limit=5000"
		if rev != 0 {
			path += fmt.Sprint("&rev=", rev)
		}
		var got getResponse
		if code := p.do("GET", path, "", &got); code != http.StatusOK {
			t.Fatalf("reading %s through %s: status %d", prefix, p.id, code)
		}
		rev = got.Header.Revision
		for _, kv := range got.KVs {
			key := str(kv.Key)
			if !strings.HasPrefix(key, prefix) {
				return kvs
			}
			kvs[key] = str(kv.Value)
			from = key + "\x00"
		}
		if !got.More {
			return kvs
		}
	}
}

// log reports the figures, whatever the outcome.
func (r *crashLoopReport) log(t *testing.T, l *writeLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var codes []string
	for why, n := range l.errors {
		codes = append(codes, fmt.Sprintf("%s: %d", why, n))
	}
	slices.Sort(codes)
	if len(codes) == 0 {
		codes = []string{"none"}
	}
	lost, hash := "not checked (the test stopped first)", "not compared"
	if r.revision != 0 {
		hash = fmt.Sprintf("at revision %d: %08x on every member", r.revision, r.hash)
		if !r.hashesAgree {
			hash = fmt.Sprintf("at revision %d: the members DIVERGED", r.revision)
		}
	}
	if r.checked {
		lost = fmt.Sprintf("%d (read back through all %d members; up to %d more writes committed without an acknowledgement)",
			r.lost, r.membersReadBack, r.unacknowledged)
	}
	t.Logf("crash loop, --log-store %s, %s=%d:\n"+
		"  rounds %d, kills of a leader %d, failed restarts %d, slowest restart %v, restarts from a snapshot %d\n"+
		"  writes acknowledged %d of %d attempts (%d writers), lost %s\n"+
		"  longest gap between acknowledged writes %v (round %d), longest run of failed attempts %d (%v)\n"+
		"  writer errors: %s\n"+
		"  hash %s",
		r.store, crashLoopSeedEnv, r.seed,
		r.rounds, r.leaderKills, r.failedRestarts, r.slowestRestart.Round(time.Millisecond), r.snapshotRestarts,
		len(l.acked), l.attempts, crashLoopWriters, lost,
		l.maxGap.Round(time.Millisecond), l.maxGapRound, l.maxFailRun, l.maxFailTime.Round(time.Millisecond),
		strings.Join(codes, ", "),
		hash)
}
