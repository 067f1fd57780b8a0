package concurrency_test

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/concurrency"
	"github.com/kvstore/kvstore/transport"
)

// openNode starts a one-member cluster in memory for the examples.
func openNode() *kvstore.Node {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		log.Fatal(err)
	}
	node, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}),
		kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 0))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := node.WaitLeader(context.Background()); err != nil {
		log.Fatal(err)
	}
	return node
}

// A holder writes only under its fencing token: once its lock has passed
// on, the write is refused instead of overwriting the new holder's work.
func ExampleMutex() {
	node := openNode()
	defer node.Close()
	ctx := context.Background()

	session, err := concurrency.NewSession(ctx, node, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	m, err := concurrency.NewMutex(session, "jobs/nightly")
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	resp, err := m.Txn(ctx).Then(kvstore.OpPut([]byte("jobs/nightly-result"), []byte("ok"))).Commit()
	fmt.Println("fenced write:", err == nil && resp.Succeeded)
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = m.Txn(ctx).Then(kvstore.OpPut([]byte("jobs/nightly-result"), []byte("late"))).Commit()
	fmt.Println("after Unlock:", err)
	// Output:
	// fenced write: true
	// after Unlock: concurrency: mutex not locked
}

func ExampleElection() {
	node := openNode()
	defer node.Close()
	ctx := context.Background()

	session, err := concurrency.NewSession(ctx, node)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	e, err := concurrency.NewElection(session, "services/indexer")
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Campaign(ctx, []byte("host-a")); err != nil {
		log.Fatal(err)
	}
	if err := e.Proclaim(ctx, []byte("host-a:ready")); err != nil {
		log.Fatal(err)
	}
	leader, err := e.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("leader %s, token %v\n", leader.Value, leader.CreateRevision == e.Rev())
	if err := e.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = e.Leader(ctx)
	fmt.Println(err)
	// Output:
	// leader host-a:ready, token true
	// concurrency: election: no leader
}

func ExampleNewSTM() {
	node := openNode()
	defer node.Close()
	ctx := context.Background()
	node.Put(ctx, []byte("acct/a"), []byte("100"))
	node.Put(ctx, []byte("acct/b"), []byte("0"))

	// Move 30 from a to b, as one serializable transaction, run again if
	// another transaction changed either balance in between.
	_, err := concurrency.NewSTM(ctx, node, func(s concurrency.STM) error {
		a, err := s.Get("acct/a")
		if err != nil {
			return err
		}
		b, err := s.Get("acct/b")
		if err != nil {
			return err
		}
		x, _ := strconv.Atoi(string(a))
		y, _ := strconv.Atoi(string(b))
		if x < 30 {
			return fmt.Errorf("insufficient funds: %d", x)
		}
		s.Put("acct/a", []byte(strconv.Itoa(x-30)))
		s.Put("acct/b", []byte(strconv.Itoa(y+30)))
		return nil
	}, concurrency.WithIsolation(concurrency.Serializable))
	if err != nil {
		log.Fatal(err)
	}
	resp, _ := node.Get(ctx, []byte("acct/"), kvstore.WithPrefix())
	for _, kv := range resp.KVs {
		fmt.Printf("%s=%s\n", kv.Key, kv.Value)
	}
	// Output:
	// acct/a=70
	// acct/b=30
}
