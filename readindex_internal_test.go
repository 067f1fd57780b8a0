package kvstore

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// Every round the batcher hands out is answered: the pending one when the
// read-index goroutine stops, and any joined later at once, so readers
// need not also wait on the node's closed channel.
func TestReadBatcherAnswersEveryRoundAfterStop(t *testing.T) {
	var b readBatcher
	b.init()
	pending := b.join()
	if b.join() != pending {
		t.Fatal("a second reader did not join the pending round")
	}
	stopErr := errors.New("closed")
	b.stop(stopErr)
	for i, r := range []*readRound{pending, b.join()} {
		select {
		case <-r.done:
		default:
			t.Fatalf("round %d not answered after stop", i)
		}
		if r.err != stopErr {
			t.Fatalf("round %d answered %v, want the stop error", i, r.err)
		}
	}
	if b.take() != nil {
		t.Fatal("a round is still pending after stop")
	}
}

// Readers of one context share a group after the first of them; a reader
// of another context selects on its own. A group is woken, and its
// context.AfterFunc unregistered, when the round is answered; or woken
// alone when the context ends first, the round still unanswered.
func TestReadBatcherGroupsReadersOfOneContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b readBatcher
		b.init()
		shared, cancelShared := context.WithCancel(context.Background())
		defer cancelShared()
		own, cancelOwn := context.WithCancel(context.Background())
		defer cancelOwn()
		r, first := b.joinWaiting(shared, shared.Done())
		_, second := b.joinWaiting(shared, shared.Done())
		_, third := b.joinWaiting(shared, shared.Done())
		_, other := b.joinWaiting(own, own.Done())
		if first != nil || second == nil || third != second || other != nil {
			t.Fatalf("groups: first %p, second %p, third %p, other context %p", first, second, third, other)
		}
		if b.take() != r || r.readers != 4 || len(r.groups) != 1 {
			t.Fatalf("round of %d readers, %d groups", r.readers, len(r.groups))
		}
		r.index = 7
		r.answer()
		select {
		case <-second.ch:
		default:
			t.Fatal("the group was not woken by the round's answer")
		}
		if second.stop() {
			t.Fatal("the group's AfterFunc was still registered after the answer")
		}

		// The context ends before the round is answered.
		ctx, cancel := context.WithCancel(context.Background())
		r, _ = b.joinWaiting(ctx, ctx.Done())
		_, g := b.joinWaiting(ctx, ctx.Done())
		cancel()
		synctest.Wait()
		select {
		case <-g.ch:
		default:
			t.Fatal("the group was not woken when its context ended")
		}
		select {
		case <-r.done:
			t.Fatal("the round was answered by a reader's context")
		default:
		}
		if b.take() != r {
			t.Fatal("the round is no longer pending")
		}
		r.answer() // waking a woken group again is harmless
	})
}

// Readers waiting on a round that is never answered, most of them in a
// group of one context, all return that context's error when it ends, with
// no time passing; readers of an answered round get the round.
func TestReadBatcherWaitEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b readBatcher
		b.init()
		ctx, cancel := context.WithCancel(context.Background())
		const readers = 6
		errs := make(chan error, readers)
		for range readers {
			go func() {
				_, err := b.wait(ctx)
				errs <- err
			}()
		}
		synctest.Wait()
		if r := b.take(); r == nil || r.readers != readers || len(r.groups) != 1 {
			t.Fatalf("round %+v: want %d readers in one group", r, readers)
		}
		cancel()
		at := time.Now()
		for range readers {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Fatalf("wait: %v, want context.Canceled", err)
			}
		}
		if d := time.Since(at); d != 0 {
			t.Fatalf("the readers took %v to see their context end", d)
		}

		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		got := make(chan *readRound, readers)
		for range readers {
			go func() {
				r, err := b.wait(ctx2)
				if err != nil {
					t.Error(err)
				}
				got <- r
			}()
		}
		synctest.Wait()
		r := b.take()
		r.index = 42
		r.answer()
		for range readers {
			if g := <-got; g != r {
				t.Fatalf("a reader got round %p, want %p", g, r)
			}
		}
	})
}
